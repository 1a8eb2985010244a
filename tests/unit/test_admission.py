"""job_api's bound on CreateJob calls in progress: past it, refused at once."""

from __future__ import annotations

import pytest

from jobkit.errors import ResourceExhausted
from services.job_api.admission import RETRY_AFTER_S, Admission


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
