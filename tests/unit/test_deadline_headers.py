"""The "until when" headers between services: an offer's deadline (job_api and the
orchestrators to a worker) and a result's answer-by (a worker to an orchestrator)."""

from __future__ import annotations

import time

import pytest

from jobkit import bus
from jobkit.offers import offer_expired
from services.orchestrator.codec import ANSWER_MARGIN_S, answer_awaited


def test_until_header_is_unix_milliseconds() -> None:
    before = time.time()
    value = int(bus.until_header(2.5))
    assert (before + 2.5) * 1000 - 1 <= value <= (time.time() + 2.5) * 1000


@pytest.mark.parametrize("seconds", [-3.0, 0.4, 30.0])
def test_seconds_left_reads_what_until_header_wrote(seconds: float) -> None:
    left = bus.seconds_left({"H": bus.until_header(seconds)}, "H")
    assert left is not None
    assert left == pytest.approx(seconds, abs=0.05)


@pytest.mark.parametrize("headers", [None, {}, {"H": ""}, {"H": "soon"}, {"H": "-5"}, {"H": "1.5"}])
def test_seconds_left_is_none_without_a_time(headers: dict[str, str] | None) -> None:
    assert bus.seconds_left(headers, "H") is None


def test_an_offer_read_after_its_deadline_or_without_one_is_expired() -> None:
    assert not offer_expired({bus.OFFER_DEADLINE_HEADER: bus.until_header(1.0)})
    assert offer_expired({bus.OFFER_DEADLINE_HEADER: bus.until_header(-0.01)})
    # Without a deadline it cannot be known to be awaited: refused, it goes to JetStream.
    assert offer_expired(None)
    assert offer_expired({bus.OFFER_DEADLINE_HEADER: "garbled"})


def test_an_answer_is_awaited_only_well_before_its_worker_stops_waiting() -> None:
    def awaited(seconds: float) -> bool:
        return answer_awaited({bus.ANSWER_BY_HEADER: bus.until_header(seconds)})

    assert awaited(ANSWER_MARGIN_S + 1.0)
    assert not awaited(ANSWER_MARGIN_S - 0.2)
    assert not awaited(-1.0)
    assert not answer_awaited(None)
    assert not answer_awaited({bus.ANSWER_BY_HEADER: "garbled"})
