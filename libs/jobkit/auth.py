"""Bearer-token authentication: ``authorization: Bearer <JWT>``; ``sub`` is the user.

Keys and algorithms come from configuration, never from the token:

- ``JWT_SECRET``: HS256 with a shared secret (development, tests, `jobctl token`);
- ``JWT_PUBLIC_KEY_FILE``: one PEM public key (RS256 or ES256);
- ``JWT_JWKS_FILE``: a JWKS document; the key is chosen by the token's ``kid`` and the file
  is re-read when it changes (key rotation without a restart).

The token's ``alg`` header only selects among the configured (pinned) algorithms, and each
algorithm family has its own key: an HS256 token is checked with the secret only, an
RS256/ES256 token with the public keys only, so ``alg: none`` and HS/RS confusion (a public
key used as an HMAC secret) cannot pass. ``exp`` is required; ``exp``/``nbf`` get a small
leeway; ``iss`` and ``aud`` are checked when configured. Every failure is the same
``Unauthenticated``: the caller learns nothing about why.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from jobkit.config import env_float, env_str
from jobkit.errors import ConfigError, Unauthenticated
from jobkit.step_tokens import STEP_TOKEN_TYPE
from jobkit.watch_tokens import DEFAULT_TTL_S, WATCH_TOKEN_TYPE, WatchTokens

ADMIN_SCOPE = "jobs:admin"
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "PS256"})
#: What a subject may not hold: control characters (NUL cannot be stored in Postgres text at
#: all; the rest have no place in a user id and forge log lines) and lone surrogates (JSON's
#: ``"\ud800"`` decodes to one; it cannot be encoded as UTF-8).
_BAD_SUBJECT_CHARACTER = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: ``subject`` owns the jobs it creates; admins may see every job."""

    subject: str
    is_admin: bool = False

    def may_see(self, owner: str) -> bool:
        """Whether a job of ``owner`` exists for this caller: its owner's, or an admin's.
        Everyone else is told it does not exist (NOT_FOUND), never that it is forbidden."""
        return owner == self.subject or self.is_admin


class JwksFile:
    """Public keys by ``kid`` from a JWKS file, re-read when its modification time changes."""

    def __init__(self, path: Path, *, check_every_s: float = 1.0) -> None:
        self._path = path
        self._check_every_s = check_every_s
        self._lock = threading.Lock()
        self._mtime = -1.0
        self._checked = 0.0
        self._keys: dict[str, Any] = {}
        self._reload()

    def _reload(self) -> None:
        mtime = os.stat(self._path).st_mtime
        if mtime == self._mtime:
            return
        document = json.loads(self._path.read_text(encoding="utf-8"))
        keys = {}
        for entry in document.get("keys", []):
            if entry.get("use", "sig") != "sig" or "kid" not in entry:
                continue
            keys[entry["kid"]] = jwt.PyJWK.from_dict(entry)
        self._keys, self._mtime = keys, mtime

    def key(self, kid: str | None) -> Any:
        now = time.monotonic()
        if now - self._checked >= self._check_every_s:
            with self._lock:
                self._checked = now
                # Keep serving the last good key set while the file is being rewritten.
                with contextlib.suppress(OSError, ValueError):
                    self._reload()
        found = self._keys.get(kid or "")
        return None if found is None else found.key


@dataclass(frozen=True, slots=True)
class AuthSettings:
    secret: str | None
    public_key_file: str | None
    jwks_file: str | None
    algorithms: tuple[str, ...]
    issuer: str | None
    audience: str | None
    leeway_s: float
    #: Signs (job_api) and verifies (notifier) watch tokens; ``JWT_SECRET`` when unset.
    watch_token_secret: str | None = None
    watch_token_ttl_s: float = DEFAULT_TTL_S

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AuthSettings:
        algorithms = tuple(
            a.strip().upper()
            for a in env_str(env, "JWT_ALGORITHMS", "RS256,ES256").split(",")
            if a.strip()
        )
        unknown = set(algorithms) - ASYMMETRIC_ALGORITHMS
        if unknown:
            raise ConfigError(f"JWT_ALGORITHMS may only name public-key algorithms: {unknown}")
        settings = cls(
            secret=env_str(env, "JWT_SECRET", "") or None,
            public_key_file=env_str(env, "JWT_PUBLIC_KEY_FILE", "") or None,
            jwks_file=env_str(env, "JWT_JWKS_FILE", "") or None,
            algorithms=algorithms,
            issuer=env_str(env, "JWT_ISSUER", "") or None,
            audience=env_str(env, "JWT_AUDIENCE", "") or None,
            leeway_s=env_float(env, "JWT_LEEWAY_S", 30.0),
            watch_token_secret=(
                env_str(env, "WATCH_TOKEN_SECRET", "") or env_str(env, "JWT_SECRET", "") or None
            ),
            watch_token_ttl_s=env_float(env, "WATCH_TOKEN_TTL_S", DEFAULT_TTL_S, minimum=10),
        )
        if not (settings.secret or settings.public_key_file or settings.jwks_file):
            raise ConfigError("set JWT_SECRET, JWT_PUBLIC_KEY_FILE or JWT_JWKS_FILE")
        return settings


class Authenticator:
    def __init__(
        self,
        secret: str | None = None,
        *,
        public_key: Any = None,
        jwks: JwksFile | None = None,
        algorithms: Sequence[str] = ("RS256", "ES256"),
        issuer: str | None = None,
        audience: str | None = None,
        leeway_s: float = 30.0,
    ) -> None:
        self._secret = secret
        self._public_key = public_key
        self._jwks = jwks
        self._algorithms = frozenset(algorithms) if (public_key or jwks) else frozenset()
        self._issuer = issuer
        self._audience = audience
        self._leeway_s = leeway_s
        #: Tokens already verified: token -> (principal, valid until, the key that verified
        #: it). Every call presents its token; checking a signature costs ~60 µs (HS256,
        #: more for RS256), a look-up a fraction of that.
        self._verified: OrderedDict[str, tuple[Principal, float, Any]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> Authenticator:
        public_key = None
        if settings.public_key_file:
            # A key object, not PEM text: PyJWT then refuses it for any HMAC algorithm.
            public_key = load_pem_public_key(Path(settings.public_key_file).read_bytes())
        jwks = JwksFile(Path(settings.jwks_file)) if settings.jwks_file else None
        return cls(
            settings.secret,
            public_key=public_key,
            jwks=jwks,
            algorithms=settings.algorithms,
            issuer=settings.issuer,
            audience=settings.audience,
            leeway_s=settings.leeway_s,
        )

    def _key_for(self, token: str) -> tuple[Any, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated() from None
        if header.get("typ") in (WATCH_TOKEN_TYPE, STEP_TOKEN_TYPE):
            # A watch token is good for one job's events at the notifier, a step token for
            # one attempt's export at job_api: neither ever as a user.
            raise Unauthenticated()
        alg = header.get("alg")
        if alg == "HS256" and self._secret:
            return self._secret, alg
        if isinstance(alg, str) and alg in self._algorithms:
            key = self._jwks.key(header.get("kid")) if self._jwks else self._public_key
            if key is not None:
                return key, alg
        raise Unauthenticated()

    def verify(self, token: str) -> Principal:
        # The key is looked up every time, so a key rotated out of the JWKS (a new key
        # object) or a token past its expiry is never served from the cache.
        key, alg = self._key_for(token)
        cached = self._verified.get(token)
        if cached is not None:
            principal, valid_until, verified_with = cached
            if verified_with is key and time.time() <= valid_until:
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
        principal, expires = self._verify_signed(token, key, alg)
        self._verified[token] = (principal, expires + self._leeway_s, key)
        if len(self._verified) > _VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    def _verify_signed(self, token: str, key: Any, alg: str) -> tuple[Principal, float]:
        """The principal and the token's expiry (``exp``), or ``Unauthenticated``."""
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway_s,
                options={"require": ["sub", "exp"], "verify_aud": self._audience is not None},
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            raise Unauthenticated() from None
        subject = claims.get("sub")
        if (
            not isinstance(subject, str)
            or not subject
            or len(subject) > 256
            or _BAD_SUBJECT_CHARACTER.search(subject)
        ):
            raise Unauthenticated()
        scopes = claims.get("scope", "")
        granted = scopes.split() if isinstance(scopes, str) else scopes
        principal = Principal(
            subject=subject, is_admin=isinstance(granted, list | tuple) and ADMIN_SCOPE in granted
        )
        return principal, float(claims["exp"])

    def authenticate(self, metadata: Any) -> Principal:
        """``metadata``: the call's invocation metadata, pairs of (key, value)."""
        return self.verify(bearer_token(metadata))


def bearer_token(metadata: Any) -> str:
    """The token of the call's ``authorization: Bearer <token>``, or ``Unauthenticated``."""
    header = next((v for k, v in metadata or () if k.lower() == "authorization"), None)
    if not isinstance(header, str):
        raise Unauthenticated()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated()
    return token.strip()


#: Verified tokens remembered per process (a few MiB at most).
_VERIFIED_CACHE_SIZE = 10_000


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


def watch_tokens_from_settings(settings: AuthSettings) -> WatchTokens | None:
    """The deployment's watch tokens, or None where no secret is configured for them."""
    if not settings.watch_token_secret:
        return None
    return WatchTokens(settings.watch_token_secret, ttl_s=settings.watch_token_ttl_s)
