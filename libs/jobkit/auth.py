"""Bearer-token authentication: ``authorization: Bearer <JWT>``, ``sub`` is the user.

The algorithm is pinned by configuration, never taken from the token, so ``alg: none``
and HS/RS confusion are rejected. Every failure is the same ``Unauthenticated`` error:
the client learns nothing about why.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from jobkit.errors import Unauthenticated

ADMIN_SCOPE = "jobs:admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: ``subject`` owns the jobs it creates."""

    subject: str
    is_admin: bool = False


@dataclass(frozen=True, slots=True)
class Authenticator:
    secret: str
    algorithms: tuple[str, ...] = ("HS256",)
    issuer: str | None = None
    audience: str | None = None
    leeway_s: float = 30.0

    def authenticate(self, metadata: Any) -> Principal:
        """``metadata``: the call's invocation metadata, pairs of (key, value)."""
        header = next((v for k, v in metadata or () if k.lower() == "authorization"), None)
        if not isinstance(header, str):
            raise Unauthenticated()
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated()
        try:
            claims = jwt.decode(
                token.strip(),
                self.secret,
                algorithms=list(self.algorithms),
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway_s,
                options={"require": ["sub", "exp"], "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError:
            raise Unauthenticated() from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 256:
            raise Unauthenticated()
        scopes = claims.get("scope", "")
        is_admin = isinstance(scopes, str) and ADMIN_SCOPE in scopes.split()
        return Principal(subject=subject, is_admin=is_admin)


def mint_token(
    secret: str,
    subject: str,
    *,
    ttl_s: int = 24 * 3600,
    scopes: Sequence[str] = (),
    issuer: str | None = None,
    audience: str | None = None,
) -> str:
    """An HS256 token for development and tests (``jobctl token``)."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": subject, "iat": now, "nbf": now, "exp": now + ttl_s}
    if scopes:
        claims["scope"] = " ".join(scopes)
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")
