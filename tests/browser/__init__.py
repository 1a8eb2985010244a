"""The gateway's page in a real browser (Chromium, driven by Playwright) against the whole
stack."""
