"""Percentiles of samples and median/min/max over runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), interpolating between closest ranks (numpy's default).

    NaN for no values, so an empty measurement shows as missing rather than as zero.
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def finite(value: float) -> float | None:
    """``value``, or None where JSON would otherwise get a bare NaN."""
    return value if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class Spread:
    """One figure over several runs: the median and the range."""

    runs: tuple[float, ...]
    #: The figure when it is not the median of ``runs``: a ratio of two medians.
    center: float | None = None

    @classmethod
    def of(cls, runs: Sequence[float]) -> Spread:
        return cls(tuple(runs))

    @classmethod
    def ratio(cls, numerator: Spread, denominator: Spread) -> Spread:
        """``numerator / denominator``: the ratio of their medians, ranging over every
        pairing of one run of each (the runs of two systems are not paired), so the range
        runs from the least to the most favourable ratio. NaN where either has no runs or
        the denominator is 0."""
        pairs = [a / b for a in numerator._valid for b in denominator._valid if b]
        top, bottom = numerator.median, denominator.median
        center = top / bottom if math.isfinite(top) and math.isfinite(bottom) and bottom else None
        return cls(tuple(pairs), math.nan if center is None else center)

    @property
    def _valid(self) -> list[float]:
        return [r for r in self.runs if math.isfinite(r)]

    @property
    def median(self) -> float:
        if self.center is not None:
            return self.center
        valid = self._valid
        return statistics.median(valid) if valid else math.nan

    @property
    def low(self) -> float:
        valid = self._valid
        return min(valid) if valid else math.nan

    @property
    def high(self) -> float:
        valid = self._valid
        return max(valid) if valid else math.nan

    def as_json(self) -> dict[str, object]:
        return {
            "median": finite(self.median),
            "min": finite(self.low),
            "max": finite(self.high),
            "runs": [finite(r) for r in self.runs],
        }
