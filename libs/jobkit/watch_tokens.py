"""Watch tokens: short-lived, read-only bearer tokens for one job's events.

A browser's ``EventSource`` cannot set an ``Authorization`` header, so the events route
takes a token in the query string, and URLs end up in proxy and browser logs. A user's own
JWT must never travel there; a watch token may, because it is worth little if it leaks:

- it is valid for ``WatchJob`` of one job, for the user who asked for it, and nothing else;
- it expires after ``WATCH_TOKEN_TTL_S`` (15 minutes by default);
- it is an HS256 JWT with its own header ``typ`` and its own key, derived from
  ``WATCH_TOKEN_SECRET`` (or ``JWT_SECRET``): the user-token ``Authenticator`` refuses its
  ``typ``, and even with the same configured secret neither kind of token verifies as the
  other, because the signing keys differ.

job_api issues them (``CreateWatchToken``, after checking the caller may see the job); the
notifier verifies them. The gateway only looks at the header to keep user JWTs out of
query strings (``is_watch_token``); it never trusts an unverified token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from jobkit.errors import PermissionDenied, Unauthenticated
from jobkit.typed_tokens import derive_key, token_type

#: The JWT header ``typ`` of a watch token (RFC 8725 §3.11: explicit typing).
WATCH_TOKEN_TYPE = "jobs-watch+jwt"  # noqa: S105 - a media type, not a secret
_AUDIENCE = "jobs.v1.NotifierService/WatchJob"
_KEY_CONTEXT = b"jobs.v1 watch token signing key"
DEFAULT_TTL_S = 900.0


@dataclass(frozen=True, slots=True)
class WatchGrant:
    """What a verified watch token allows: ``subject`` may watch ``job_id``'s events."""

    subject: str
    job_id: str
    expires_at: datetime


def is_watch_token(token: str) -> bool:
    """Whether ``token`` claims to be a watch token (its header, unverified)."""
    return token_type(token) == WATCH_TOKEN_TYPE


class WatchTokens:
    """Issues and verifies watch tokens with a key derived from ``secret``."""

    def __init__(self, secret: str, *, ttl_s: float = DEFAULT_TTL_S, leeway_s: float = 5.0):
        self._key = derive_key(secret, _KEY_CONTEXT)
        self.ttl_s = ttl_s
        self._leeway_s = leeway_s

    def issue(self, subject: str, job_id: str, now: datetime) -> tuple[str, datetime]:
        """A token letting ``subject`` watch ``job_id``, and when it expires."""
        expires_at = (now + timedelta(seconds=self.ttl_s)).replace(microsecond=0)
        claims = {
            "sub": subject,
            "job": job_id,
            "aud": _AUDIENCE,
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
        }
        token = jwt.encode(claims, self._key, algorithm="HS256", headers={"typ": WATCH_TOKEN_TYPE})
        return token, expires_at

    def verify(self, token: str, job_id: str) -> WatchGrant:
        """The grant of a valid token for ``job_id``: ``Unauthenticated`` for a bad or
        expired token, ``PermissionDenied`` for a good one meant for another job."""
        if not is_watch_token(token):
            raise Unauthenticated()
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=_AUDIENCE,
                leeway=self._leeway_s,
                options={"require": ["sub", "job", "exp"]},
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            raise Unauthenticated() from None
        subject, granted_job = claims["sub"], claims["job"]
        if not isinstance(subject, str) or not subject or not isinstance(granted_job, str):
            raise Unauthenticated()
        if granted_job != job_id:
            raise PermissionDenied("this watch token is for another job")
        return WatchGrant(subject, granted_job, datetime.fromtimestamp(claims["exp"], UTC))
