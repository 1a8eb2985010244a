"""Structured JSON logging, configured once per process.

Every line is one JSON object with ``service``, ``level``, ``timestamp``, ``event`` and
whatever was bound at the edges (``job_id``, ``step``, ``rpc``). Free text passes a
redaction processor before rendering, so personal data that slips into a message or an
exception never reaches the log; inputs and results are never logged at all.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

Processor = Callable[[Any, str, MutableMapping[str, Any]], MutableMapping[str, Any]]

# Keys whose values are identifiers or numbers we put there ourselves: never redacted.
_TRUSTED_KEYS = frozenset(
    {
        "event",
        "level",
        "timestamp",
        "service",
        "logger",
        "job_id",
        "step",
        "rpc",
        "attempt",
        "sequence",
        "trace_id",
        "code",
        "count",
        "subject",
        "job_type",
        "duration_ms",
        "status",
        # Our own diagnostics: addresses we listen on, exception class names, reasons we
        # wrote, and the caller's id as a one-way hash.
        "address",
        "port",
        "error",
        "reason",
        "retryable",
        "kind",
        "migration",
        "user",
    }
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)bearer\s+[a-z0-9._~+/=-]+"), "[REDACTED_TOKEN]"),
    (re.compile(r"\beyJ[a-zA-Z0-9_-]+\.[a-zA-Z0-9_-]+\.[a-zA-Z0-9_-]*"), "[REDACTED_JWT]"),
    (re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s/:@]+:[^\s/@]+@"), "[REDACTED_URL_CREDENTIALS]@"),
    (
        re.compile(r"(?i)([?&](?:token|key|secret|password|sig|signature|access_token)=)[^&\s]+"),
        r"\1[REDACTED]",
    ),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[REDACTED_EMAIL]"),
    (re.compile(r"\b(?:\d[ -]?){13,19}\b"), "[REDACTED_NUMBER]"),
    (
        re.compile(r"(?<![\w.])\+?\(?\d{1,4}\)?(?:[ .-]?\(?\d{2,4}\)?){2,5}(?![\w.])"),
        "[REDACTED_PHONE]",
    ),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"), "[REDACTED_IP]"),
)


def redact_text(text: str) -> str:
    """Replace personal data and secrets in free text with placeholders."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: redact every value except the identifiers we trust."""
    for key, value in list(event_dict.items()):
        if key not in _TRUSTED_KEYS or key == "event":
            event_dict[key] = _redact_value(value)
    return event_dict


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route structlog and the stdlib ``logging`` (asyncpg, nats, grpc) to JSON on stderr."""
    numeric_level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _bind_service(service),
        # Without locals: a frame's variables may hold a résumé.
        structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        ),
        redact_processor,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Libraries log at WARNING and above only: their DEBUG lines can echo payloads.
    root.setLevel(max(numeric_level, logging.WARNING))


def _bind_service(service: str) -> Processor:
    def processor(
        _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event_dict.setdefault("service", service)
        return event_dict

    return processor


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
