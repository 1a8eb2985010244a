"""gateway: HTTP/JSON and Server-Sent Events in front of job_api and notifier, for browsers."""
