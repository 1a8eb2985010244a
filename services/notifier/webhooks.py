"""What the notifier decides about a webhook delivery, as pure functions: how a try is
signed, what its outcome is, and when the next one comes.

Signatures follow the Standard Webhooks spec, made by its reference package
(``standardwebhooks``): ``webhook-id`` (the same on every try), ``webhook-timestamp`` (this
try's, in seconds) and ``webhook-signature``, ``v1,<base64 HMAC-SHA256 of
"<id>.<timestamp>.<body>">``. ``WEBHOOK_SECRET`` may hold two secrets during a rotation:
each signs, and the header carries both signatures, space-separated, so a receiver that
knows either one verifies the request.

Back-off: after failed try ``n`` the next comes ``WEBHOOK_BACKOFF_S`` times 2^(n-1) later, at
most ``WEBHOOK_BACKOFF_MAX_S``, less up to a tenth (a spread fixed by the delivery's id and
the try, so that a burst of deliveries to a receiver that was down does not come back as
one). By default 5 s, 10 s, 20 s, ... 2,560 s, then hourly: try 33, the last, comes about
23 hours after the first. A delivery whose last try fails is dead: a dead letter.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from standardwebhooks import Webhook

from jobkit.errors import ConfigError
from jobkit.webhooks import DeliveryState

SECRET_PREFIX = "whsec_"  # noqa: S105 - the spec's prefix, not a secret
#: The spec's shortest secret (192 bits).
MIN_SECRET_BYTES = 24
#: The share of a back-off that the spread may take off.
JITTER = 0.1


def parse_secrets(raw: str) -> tuple[str, ...]:
    """``WEBHOOK_SECRET``: one secret, or two during a rotation (separated by a space or a
    comma), each ``whsec_`` and the key in base64, as the Standard Webhooks spec writes
    them. Raises ``ConfigError`` for anything else."""
    secrets = tuple(s for s in re.split(r"[\s,]+", raw) if s)
    if not secrets:
        raise ConfigError("WEBHOOK_SECRET holds no secret")
    for secret in secrets:
        try:
            key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except binascii.Error:
            raise ConfigError(
                "WEBHOOK_SECRET must be whsec_ followed by a base64 key (two of them, "
                "separated by a space or a comma, during a rotation)"
            ) from None
        if len(key) < MIN_SECRET_BYTES:
            raise ConfigError(f"a WEBHOOK_SECRET key must be at least {MIN_SECRET_BYTES} bytes")
    return secrets


class Signer:
    """Signs each try with every secret it was given."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self._keys = [Webhook(secret) for secret in secrets]

    def headers(self, webhook_id: str, at: datetime, body: bytes) -> dict[str, str]:
        """The Standard Webhooks headers of a try made ``at`` (its timestamp) of ``body``."""
        at = at.astimezone(UTC)
        data = body.decode()
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(math.floor(at.timestamp())),
            "webhook-signature": " ".join(key.sign(webhook_id, at, data) for key in self._keys),
        }


@dataclass(frozen=True, slots=True)
class TryResult:
    """How one try went: the response's HTTP status, or the class of error that left it
    without one (``refused``, ``dns``, ``connect``, ``timeout``, ``tls``, ``protocol``)."""

    status: int | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def outcome(self) -> str:
        """For metrics and logs: ``delivered``, ``http_error``, or the error's class."""
        if self.delivered:
            return "delivered"
        return self.error or "http_error"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    #: Tries in all, the first included.
    max_attempts: int = 33
    #: The wait after the first failed try; it doubles after each.
    backoff_s: float = 5.0
    #: The longest wait between two tries.
    backoff_max_s: float = 3600.0

    def delay_after(self, attempts: int, webhook_id: str) -> float | None:
        """The wait before the next try once ``attempts`` tries have failed; ``None`` when
        that was the last."""
        if attempts >= self.max_attempts:
            return None
        full = min(self.backoff_s * 2.0 ** min(attempts - 1, 64), self.backoff_max_s)
        return full * (1 - JITTER * _spread(webhook_id, attempts))

    def after(
        self, attempts: int, result: TryResult, webhook_id: str
    ) -> tuple[DeliveryState, float | None]:
        """Where a delivery stands after its try number ``attempts`` went as ``result``,
        and the wait before its next try (while still ``PENDING``)."""
        if result.delivered:
            return DeliveryState.DELIVERED, None
        delay = self.delay_after(attempts, webhook_id)
        if delay is None:
            return DeliveryState.DEAD, None
        return DeliveryState.PENDING, delay


def _spread(webhook_id: str, attempts: int) -> float:
    """A fraction in [0, 1), fixed for a delivery and try, uniform across deliveries."""
    digest = hashlib.sha256(f"{webhook_id}/{attempts}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32
