"""The logging redaction processor on free text, and structlog wiring."""

from __future__ import annotations

import pytest

from jobkit.logging import redact_processor, redact_text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("contact jane.doe+cv@example.co.uk now", "jane.doe+cv@example.co.uk"),
        ("call +44 20 7946 0958", "7946 0958"),
        ("card 4111 1111 1111 1111", "4111 1111 1111 1111"),
        ("from 203.0.113.7", "203.0.113.7"),
        ("Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig", "eyJzdWIiOiJ4In0"),
        ("postgresql://user:hunter2@db/jobs", "hunter2"),
        ("https://x.test/cb?token=s3cr3t&x=1", "s3cr3t"),
    ],
)
def test_free_text_is_redacted(text: str, secret: str) -> None:
    assert secret not in redact_text(text)


def test_trusted_identifiers_pass_and_other_fields_are_redacted() -> None:
    event = {
        "event": "step_failed",
        "job_id": "6f1c4c6e-0000-4000-8000-000000000001",
        "step": "tailor_cv",
        "detail": "mail ada@example.com",
    }
    out = redact_processor(None, "info", dict(event))
    assert out["job_id"] == event["job_id"]
    assert out["step"] == "tailor_cv"
    assert "ada@example.com" not in out["detail"]
