"""Struct to plain values, and times to Timestamps: the same answers as protobuf's own
converters, faster."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf import json_format, timestamp_pb2

from jobkit.convert import (
    DEFAULT_CONTENT_TYPE,
    UPLOAD_PIECE,
    dict_to_struct,
    struct_to_dict,
    timestamp,
    upload_of,
    upload_requests,
)
from jobkit.gen.jobs.v1 import job_service_pb2


def test_a_struct_becomes_the_values_json_format_gives() -> None:
    document = {
        "name": "Zoë",
        "years": 7,
        "ratio": 0.25,
        "remote": True,
        "manager": None,
        "skills": ["python", 3, False, None, {"deep": [[], {}]}],
        "empty": {},
        "nested": {"a": {"b": {"c": "d"}}},
    }
    value = dict_to_struct(document)
    plain = struct_to_dict(value)
    assert plain == json_format.MessageToDict(value)
    assert plain["years"] == 7.0
    assert isinstance(plain["years"], float)
    assert plain["skills"][4] == {"deep": [[], {}]}
    assert struct_to_dict(dict_to_struct({})) == {}


def test_a_number_json_cannot_hold_is_refused_as_json_format_refuses_it() -> None:
    for number in (float("nan"), float("inf"), -float("inf")):
        value = dict_to_struct({"deep": [{"n": number}]})
        with pytest.raises(ValueError, match=r"NaN|Infinity"):
            json_format.MessageToDict(value)
        with pytest.raises(ValueError, match="finite"):
            struct_to_dict(value)


async def _pieces(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def test_a_file_goes_as_upload_messages_and_comes_back_whole() -> None:
    big = b"x" * (UPLOAD_PIECE + 10)
    messages = [m async for m in upload_requests(_pieces(b"ab", big, b""), "text/plain")]
    assert [m.content_type for m in messages] == ["text/plain", "", ""]  # an empty piece is none
    assert max(len(m.data) for m in messages) == UPLOAD_PIECE

    async def replay() -> AsyncIterator[job_service_pb2.CreateUploadRequest]:
        for message in messages:
            yield message

    content_type, pieces = await upload_of(replay())
    assert content_type == "text/plain"
    assert b"".join([p async for p in pieces]) == b"ab" + big


async def test_an_empty_upload_is_one_message_and_an_unnamed_type_is_octet_stream() -> None:
    messages = [m async for m in upload_requests(_pieces(), "")]
    assert len(messages) == 1

    async def replay() -> AsyncIterator[job_service_pb2.CreateUploadRequest]:
        for message in messages:
            yield message

    content_type, pieces = await upload_of(replay())
    assert content_type == DEFAULT_CONTENT_TYPE
    assert [p async for p in pieces] == []


def _times() -> list[datetime]:
    rng = random.Random(7)
    zones = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
    times = [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1900, 3, 1, 12, 0, 0, 1),
        datetime(2026, 12, 3, 9, 58, 37, 123_456),
        datetime.now(UTC),
    ]
    for _ in range(500):
        at = datetime(1, 1, 1) + timedelta(microseconds=rng.randrange(315_537_897_600_000_000))
        times.append(at if rng.random() < 0.3 else at.replace(tzinfo=rng.choice(zones)))
    return times


@pytest.mark.parametrize("at", _times())
def test_a_time_becomes_the_timestamp_protobuf_gives(at: datetime) -> None:
    expected = timestamp_pb2.Timestamp()
    expected.FromDatetime(at)
    assert timestamp(at) == expected
