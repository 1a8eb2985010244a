"""Step tokens: short-lived bearer tokens with which one step attempt reads its job
owner's history from job_api (``jobs.internal.v1.ExportService``).

A worker never touches Postgres, so a step that exports a user's jobs (``data_export``)
asks job_api for them. It cannot present the user's JWT (the job outlives the request that
created it, and no user token ever reaches a worker), so whoever builds the attempt's
``StepTask`` (``jobkit.dispatch``: job_api for a new job's first step, the orchestrator for
every later attempt) mints a token for it, for the job types that need one
(``JobTypeSpec.reads_history``):

- it names the job, its owner, the step and the attempt, and nothing else: job_api streams
  that owner's history to that attempt only, and only while the job runs;
- it expires a little after the step's timeout (``grace_s``) counted from when the attempt
  may start, so a leaked one is soon worthless; an attempt whose token expired before it
  ran fails with a retryable error, and its next attempt gets a fresh token;
- it is an HS256 JWT with its own header ``typ`` and audience and its own key, derived
  from ``STEP_TOKEN_SECRET`` (or ``JWT_SECRET``): a user token or a watch token never
  verifies as one, nor a step token as either of them, even with the same configured
  secret, because the signing keys differ (as for ``jobkit.watch_tokens``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt

from jobkit.config import env_str
from jobkit.errors import PermissionDenied, Unauthenticated
from jobkit.typed_tokens import derive_key, token_type

#: The JWT header ``typ`` of a step token (RFC 8725 §3.11: explicit typing).
STEP_TOKEN_TYPE = "jobs-step+jwt"  # noqa: S105 - a media type, not a secret
_AUDIENCE = "jobs.internal.v1.ExportService"
_KEY_CONTEXT = b"jobs.internal.v1 step token signing key"
#: How long past the step's timeout a token stays valid: room for the attempt to wait for a
#: free worker after the moment it may start.
DEFAULT_GRACE_S = 300.0


def step_token_secret(env: Mapping[str, str]) -> str | None:
    """``STEP_TOKEN_SECRET``, else ``JWT_SECRET``, else none (no step tokens: the steps
    that need one fail, permanently, saying so)."""
    return env_str(env, "STEP_TOKEN_SECRET", "") or env_str(env, "JWT_SECRET", "") or None


@dataclass(frozen=True, slots=True)
class StepGrant:
    """What a verified step token allows: attempt ``attempt`` of step ``step`` of job
    ``job_id`` reads ``subject``'s history."""

    subject: str
    job_id: str
    step: str
    attempt: int
    expires_at: datetime


def is_step_token(token: str) -> bool:
    """Whether ``token`` claims to be a step token (its header, unverified)."""
    return token_type(token) == STEP_TOKEN_TYPE


class StepTokens:
    """Issues and verifies step tokens with a key derived from ``secret``; ``job_types``
    are the types whose steps get one (``covers``)."""

    def __init__(
        self,
        secret: str,
        *,
        job_types: Iterable[str] = (),
        grace_s: float = DEFAULT_GRACE_S,
        leeway_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = derive_key(secret, _KEY_CONTEXT)
        self._job_types = frozenset(job_types)
        self.grace_s = grace_s
        self._leeway_s = leeway_s
        self._clock = clock

    def covers(self, job_type: str) -> bool:
        """Whether the steps of ``job_type`` are given a token."""
        return job_type in self._job_types

    def issue(
        self,
        subject: str,
        job_id: str,
        step: str,
        attempt: int,
        *,
        timeout_s: float,
        not_before: datetime | None = None,
    ) -> str:
        """A token for one attempt, valid until ``timeout_s`` plus the grace after it may
        start (now, or ``not_before`` if later: a retry's back-off)."""
        now = self._clock()
        start = max(now, not_before.timestamp()) if not_before is not None else now
        claims = {
            "sub": subject,
            "job": job_id,
            "step": step,
            "attempt": attempt,
            "aud": _AUDIENCE,
            "iat": int(now),
            "exp": int(start + timeout_s + self.grace_s),
        }
        return jwt.encode(claims, self._key, algorithm="HS256", headers={"typ": STEP_TOKEN_TYPE})

    def verify(self, token: str, job_id: str) -> StepGrant:
        """The grant of a valid token for ``job_id``: ``Unauthenticated`` for a bad or
        expired token (or any other kind of token), ``PermissionDenied`` for a good one
        minted for another job."""
        if not is_step_token(token):
            raise Unauthenticated()
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=_AUDIENCE,
                leeway=self._leeway_s,
                # Expiry is checked below, against this object's clock.
                options={
                    "require": ["sub", "job", "step", "attempt", "exp"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            raise Unauthenticated() from None
        subject, job, step, attempt, exp = (
            claims[k] for k in ("sub", "job", "step", "attempt", "exp")
        )
        if not isinstance(exp, int | float) or exp + self._leeway_s < self._clock():
            raise Unauthenticated()
        if not (
            isinstance(subject, str)
            and subject
            and isinstance(job, str)
            and isinstance(step, str)
            and isinstance(attempt, int)
            and attempt >= 1
        ):
            raise Unauthenticated()
        if job != job_id:
            raise PermissionDenied("this step token is for another job")
        return StepGrant(subject, job, step, attempt, datetime.fromtimestamp(exp, UTC))
