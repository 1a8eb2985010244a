"""ListJobs page tokens: opaque, tamper-evident, bound to their filters."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest

from jobkit.errors import InvalidArgument
from services.job_api.page_tokens import PagePosition, PageTokens

POSITION = PagePosition(datetime(2026, 5, 1, 12, 30, tzinfo=UTC), uuid.uuid4())


def test_round_trip() -> None:
    tokens = PageTokens("secret")
    assert tokens.decode(tokens.encode(POSITION, "alice|*|*"), "alice|*|*") == POSITION


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "AAAA", base64.urlsafe_b64encode(b"x" * 40).decode()],
)
def test_garbage_is_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        PageTokens("secret").decode(token, "alice|*|*")
    assert caught.value.violations[0].field == "page_token"


def test_a_forged_or_foreign_token_is_rejected() -> None:
    token = PageTokens("secret").encode(POSITION, "alice|*|*")
    with pytest.raises(InvalidArgument):
        PageTokens("other-secret").decode(token, "alice|*|*")
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[-3] ^= 1
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(InvalidArgument):
        PageTokens("secret").decode(tampered, "alice|*|*")


def test_a_token_cannot_be_replayed_with_other_filters_or_by_another_user() -> None:
    tokens = PageTokens("secret")
    token = tokens.encode(POSITION, "alice|*|*")
    for other in ("alice|RUNNING|*", "bob|*|*"):
        with pytest.raises(InvalidArgument):
            tokens.decode(token, other)
