"""One error hierarchy for the whole system.

Driver exceptions (asyncpg, nats) are wrapped into these in exactly one place each
(``jobkit.db.wrap_db_errors``, ``jobkit.bus``), so domain code and servicers only ever
see ``JobkitError`` subclasses. They know nothing of transports: ``jobkit.rpc.STATUS_CODES``
is the one table that turns them into gRPC status codes at the RPC edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid field of a request: its path (e.g. ``input.resume.name``) and why."""

    field: str
    description: str


class JobkitError(Exception):
    """Root of every error this system raises on purpose."""

    #: Said to clients. Subclasses raised with client-facing text override it.
    public_message: str = "internal error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.public_message)
        if message is not None:
            self.public_message = message


class ConfigError(JobkitError):
    """A setting is missing or malformed; the process cannot start."""


class NotFound(JobkitError):
    public_message = "job not found"


class InvalidArgument(JobkitError):
    public_message = "invalid argument"

    def __init__(self, message: str, violations: Sequence[FieldViolation] = ()) -> None:
        super().__init__(message)
        self.violations = tuple(violations)

    @classmethod
    def on(cls, field: str, why: str) -> InvalidArgument:
        """One field is wrong: "<field> <why>", with that field's violation attached."""
        return cls(f"{field} {why}", [FieldViolation(field, why)])


class AlreadyExists(JobkitError):
    public_message = "already exists"


class FailedPrecondition(JobkitError):
    """The request is valid but illegal in the job's current state."""

    public_message = "not allowed in the job's current state"


class Unauthenticated(JobkitError):
    public_message = "missing or invalid credentials"


class PermissionDenied(JobkitError):
    public_message = "permission denied"


class ResourceExhausted(JobkitError):
    public_message = "rate limit exceeded"

    def __init__(self, message: str | None = None, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(JobkitError):
    """A dependency (Postgres, NATS) cannot be reached right now; the caller may retry."""

    public_message = "service temporarily unavailable, retry shortly"


class DataLoss(JobkitError):
    """Stored bytes no longer match what was stored (an artifact's sha256)."""

    public_message = "the stored data is damaged"
