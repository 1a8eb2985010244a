"""What the system's own bearer tokens share: an HS256 JWT with an explicit header ``typ``
(RFC 8725 §3.11) and a signing key of its own kind, derived from a configured secret.

Watch tokens (``jobkit.watch_tokens``) and step tokens (``jobkit.step_tokens``) are both;
the user-token ``Authenticator`` refuses their types. Because each kind derives its key
with its own context, no kind verifies as another even when they share one secret.
"""

from __future__ import annotations

import hashlib
import hmac

import jwt


def token_type(token: str) -> str | None:
    """The ``typ`` a token's header claims (unverified), if it is a JWT at all."""
    try:
        claimed = jwt.get_unverified_header(token).get("typ")
    except jwt.PyJWTError:
        return None
    return claimed if isinstance(claimed, str) else None


def derive_key(secret: str, context: bytes) -> bytes:
    """The signing key of one kind of token, from the configured secret."""
    return hmac.new(secret.encode(), context, hashlib.sha256).digest()
