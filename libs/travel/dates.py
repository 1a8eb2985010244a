"""A trip's dates: ``{start, end}`` (ISO dates, both days included) or ``{duration}``
(a number of days), checked for what a JSON Schema cannot say."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

#: The longest trip planned, in days.
MAX_DAYS: Final = 30


@dataclass(frozen=True, slots=True)
class TripDates:
    """How many days a trip has, and from when if its dates are known."""

    days: int
    start: date | None = None

    def day_date(self, n: int) -> date | None:
        """The date of day ``n`` (1-based), if the trip has dates."""
        return None if self.start is None else self.start + timedelta(days=n - 1)

    @property
    def end(self) -> date | None:
        return self.day_date(self.days)


def _iso_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        return None


def date_violations(dates: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field under ``dates``, what is wrong) for each rule ``dates`` breaks: start and
    end together, or a duration alone; real calendar dates; end not before start; at most
    :data:`MAX_DAYS` days. The types and shapes are the schema's to check."""
    start, end, duration = dates.get("start"), dates.get("end"), dates.get("duration")
    if duration is not None:
        if start is not None or end is not None:
            return [("duration", "must not be given with start and end")]
        return []
    if start is None and end is None:
        return [("", "must have start and end, or duration")]
    found = [(name, "is required") for name, value in (("start", start), ("end", end))
             if value is None]  # fmt: skip
    first, last = _iso_date(start), _iso_date(end)
    for name, value, parsed in (("start", start, first), ("end", end, last)):
        if value is not None and parsed is None:
            found.append((name, "must be a calendar date (YYYY-MM-DD)"))
    if found or first is None or last is None:
        return found
    if last < first:
        return [("end", "must not be before start")]
    if (last - first).days + 1 > MAX_DAYS:
        return [("end", f"must be within {MAX_DAYS} days of start (both days count)")]
    return []


def trip_dates(dates: Mapping[str, Any]) -> TripDates:
    """The trip's days from a ``dates`` object that :func:`date_violations` passed."""
    if dates.get("duration") is not None:
        return TripDates(int(dates["duration"]))
    first, last = date.fromisoformat(dates["start"]), date.fromisoformat(dates["end"])
    return TripDates((last - first).days + 1, first)
