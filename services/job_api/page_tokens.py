"""Opaque, signed ListJobs page tokens.

A token is the position after the last job returned (its ``created_at`` and id, the
keyset of the newest-first index) plus the filters it was issued for, HMAC-signed so a
client can neither forge a position nor reuse a token with other filters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from jobkit.errors import FieldViolation, InvalidArgument


def _invalid_token() -> InvalidArgument:
    return InvalidArgument(
        "page_token is invalid: pass next_page_token from the previous response unchanged",
        [FieldViolation("page_token", "is not a token this server issued for these filters")],
    )


@dataclass(frozen=True, slots=True)
class PagePosition:
    created_at: datetime
    job_id: uuid.UUID


class PageTokens:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"jobs.page-token:" + secret.encode()).digest()

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:16]

    def encode(self, position: PagePosition, filters: str) -> str:
        body = json.dumps(
            {"c": position.created_at.isoformat(), "i": str(position.job_id), "f": filters},
            separators=(",", ":"),
        ).encode()
        return base64.urlsafe_b64encode(self._sign(body) + body).decode().rstrip("=")

    def decode(self, token: str, filters: str) -> PagePosition:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            signature, body = raw[:16], raw[16:]
            if not hmac.compare_digest(signature, self._sign(body)):
                raise ValueError("bad signature")
            doc = json.loads(body)
            if doc["f"] != filters:
                raise ValueError("filters changed")
            return PagePosition(datetime.fromisoformat(doc["c"]), uuid.UUID(doc["i"]))
        except (ValueError, KeyError, TypeError):
            raise _invalid_token() from None
