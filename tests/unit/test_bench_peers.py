"""The benchmark's comparison with peers: how ratios and their targets read, and how
``--peer`` composes with ``--only``. Pure logic: no peer is installed or started here."""

from __future__ import annotations

import math

import pytest

from bench.__main__ import parse
from bench.peers import PEERS
from bench.report import IDLE_P50_RATIO, THROUGHPUT_RATIO, Target
from bench.stats import Spread


def test_a_ratio_is_of_the_medians_and_ranges_over_every_pairing() -> None:
    ours = Spread.of([10.0, 12.0, 20.0])
    theirs = Spread.of([40.0, 20.0])
    ratio = Spread.ratio(ours, theirs)
    assert ratio.median == pytest.approx(12.0 / 30.0)
    assert ratio.low == pytest.approx(10.0 / 40.0)
    assert ratio.high == pytest.approx(20.0 / 20.0)
    assert len(ratio.runs) == 6


def test_a_ratio_without_runs_on_either_side_is_missing() -> None:
    assert math.isnan(Spread.ratio(Spread.of([]), Spread.of([1.0])).median)
    assert math.isnan(Spread.ratio(Spread.of([1.0]), Spread.of([0.0])).median)
    assert math.isnan(Spread.ratio(Spread.of([1.0]), Spread.of([math.nan])).median)


def test_a_target_with_a_goal_says_which_it_meets() -> None:
    assert str(IDLE_P50_RATIO) == "<= 1 (goal <= 0.5)"
    assert IDLE_P50_RATIO.verdict(0.4) == "pass, goal met"
    assert IDLE_P50_RATIO.verdict(0.8) == "pass, goal MISS"
    assert IDLE_P50_RATIO.verdict(1.2) == "MISS"
    assert IDLE_P50_RATIO.verdict(math.nan) == ""
    assert str(THROUGHPUT_RATIO) == ">= 3 (goal >= 4)"
    assert THROUGHPUT_RATIO.verdict(4.5) == "pass, goal met"
    assert THROUGHPUT_RATIO.verdict(2.9) == "MISS"


def test_a_target_without_a_goal_reads_as_before() -> None:
    target = Target(10, at_least=False)
    assert str(target) == "<= 10"
    assert target.verdict(9) == "pass"
    assert target.verdict(11) == "MISS"
    assert target.goal_met(9) is None


def test_a_full_run_compares_with_every_peer() -> None:
    config = parse([])
    assert config.peers == PEERS
    assert config.peer_figures() == (True, True)
    assert parse(["--peer", "none"]).peers == ()


def test_only_peer_runs_our_throughput_and_idle_latency_and_theirs() -> None:
    config = parse(["--only", "peer"])
    assert config.peers == PEERS
    assert config.measures_throughput
    assert config.measures_idle
    assert not config.runs_phase("floors")
    assert parse(["--only", "peer", "--peer", "procrastinate"]).peers == ("procrastinate",)


def test_a_named_peer_runs_what_ours_runs() -> None:
    config = parse(["--only", "throughput", "--peer", "celery,procrastinate"])
    assert config.peers == ("procrastinate", "celery")
    assert config.peer_figures() == (True, False)
    assert parse(["--only", "idle", "--peer", "procrastinate"]).peer_figures() == (False, True)
    assert parse(["--only", "throughput"]).peers == ()


@pytest.mark.parametrize(
    "argv",
    [
        ["--peer", "sidekiq"],
        ["--only", "floors", "--peer", "procrastinate"],
        ["--only", "peer", "--peer", "none"],
    ],
)
def test_a_peer_with_nothing_to_compare_is_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse(argv)
