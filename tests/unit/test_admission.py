"""job_api's bound on CreateJob calls in progress: past it, refused at once."""

from __future__ import annotations

import pytest

from jobkit.dispatch_gate import Word
from jobkit.errors import ResourceExhausted
from services.job_api.admission import RETRY_AFTER_S, Admission, refuse_past_backlog


def test_calls_past_the_bound_are_refused_at_once_and_the_bound_frees_as_calls_end() -> None:
    admission = Admission(2)
    with admission.admit(), admission.admit():
        with pytest.raises(ResourceExhausted) as refused, admission.admit():
            pass
        assert refused.value.retry_after_s == RETRY_AFTER_S
        assert admission.in_flight == 2
    assert admission.in_flight == 0
    with admission.admit():
        assert admission.in_flight == 1


def test_a_failing_call_frees_its_place() -> None:
    admission = Admission(1)
    with pytest.raises(ValueError, match="the call failed"), admission.admit():
        raise ValueError("the call failed")
    with admission.admit():
        pass


def test_zero_is_no_bound() -> None:
    admission = Admission(0)
    with admission.admit(), admission.admit(), admission.admit():
        assert admission.in_flight == 3


def test_a_full_queue_refuses_new_jobs_saying_when_it_will_be_half_drained() -> None:
    # 3,000 waiting against a bound of 2,000, draining 250 a second: half the bound (1,000)
    # is 2,000 releases away, 8 s.
    with pytest.raises(ResourceExhausted) as refused:
        refuse_past_backlog(Word(held=True, backlog=3000, drain_per_s=250.0), 2000)
    assert refused.value.retry_after_s == 8.0
    assert "3000 steps wait" in str(refused.value)


@pytest.mark.parametrize(
    ("word", "retry_after_s"),
    [
        # Draining fast: at least a second.
        (Word(held=True, backlog=2000, drain_per_s=100_000.0), 1.0),
        # Not draining at all (the workers are gone): at most a minute.
        (Word(held=True, backlog=2000, drain_per_s=0.0), 60.0),
    ],
)
def test_the_wait_for_a_full_queue_is_bounded(word: Word, retry_after_s: float) -> None:
    with pytest.raises(ResourceExhausted) as refused:
        refuse_past_backlog(word, 2000)
    assert refused.value.retry_after_s == retry_after_s


def test_below_the_bound_or_with_none_a_job_is_taken() -> None:
    refuse_past_backlog(Word(held=True, backlog=1999, drain_per_s=1.0), 2000)
    refuse_past_backlog(Word(held=True, backlog=10**9, drain_per_s=1.0), 0)


def test_the_word_survives_the_wire() -> None:
    word = Word(held=True, backlog=1234, drain_per_s=56.7, express_waiting=3)
    assert Word.decode(word.encode()) == word
    assert not word.express_open


def test_a_word_from_an_earlier_release_leaves_the_express_lane_open() -> None:
    word = Word.decode(b'{"held": true, "backlog": 5, "drain_per_s": 1.0}')
    assert word == Word(held=True, backlog=5, drain_per_s=1.0, express_waiting=0)
    assert word.express_open
