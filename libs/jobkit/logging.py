"""Structured JSON logging, configured once per process.

Every line is one JSON object with ``service``, ``level``, ``timestamp``, ``event`` and
whatever was bound at the edges (``job_id``, ``step``, ``rpc``). Free text passes a
redaction processor before rendering, so personal data that slips into a message or an
exception never reaches the log; inputs and results are never logged at all.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import structlog

from jobkit.redaction import redact

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

#: Names, contacts and other identifying strings of the job being handled right now; bound
#: at the edges (``job_api`` while it validates an input, ``ai_worker`` while a step runs).
_SENSITIVE: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "sensitive_terms", default=frozenset()
)

#: Exceptions whose messages we write ourselves or that carry no data: kept in logs. The
#: messages of every other type (a ValueError from a handler, a driver error quoting a row)
#: are withheld; type, file and line remain for debugging.
_SAFE_EXCEPTION_TYPES = frozenset(
    {
        "JobkitError",
        "StepError",
        "RetryableStepError",
        "PermanentStepError",
        "TimeoutError",
        "CancelledError",
        "ConnectionError",
        "ConnectionRefusedError",
        "ConnectionResetError",
        "OSError",
        "NoServersError",
        "ConnectionClosedError",
        "AbortError",
        "Unavailable",
        "NotFound",
        "InvalidArgument",
        "Unauthenticated",
        "ResourceExhausted",
        "AlreadyExists",
        "FailedPrecondition",
        "ConfigError",
    }
)


@contextlib.contextmanager
def redacting(terms: frozenset[str]) -> Iterator[None]:
    """Redact ``terms`` (from :func:`jobkit.redaction.sensitive_terms`) in every log line
    written inside the block, on top of the generic patterns."""
    token = _SENSITIVE.set(_SENSITIVE.get() | terms)
    try:
        yield
    finally:
        _SENSITIVE.reset(token)


def redact_text(text: str) -> str:
    """Replace personal data and secrets in free text with placeholders."""
    return redact(text, _SENSITIVE.get())


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


def withhold_exception_messages(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor, after ExceptionRenderer: keep the messages of safe types only."""
    for entry in event_dict.get("exception") or ():
        if isinstance(entry, dict) and entry.get("exc_type") not in _SAFE_EXCEPTION_TYPES:
            entry["exc_value"] = "[message withheld]"
            entry.pop("syntax_error", None)
    return event_dict


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
        withhold_exception_messages,
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
