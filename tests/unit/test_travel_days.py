"""travel.dates and travel.days: a trip's days from its dates, and a theme and three
slots for each from the interests."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from travel.dates import TripDates, date_violations, trip_dates
from travel.days import day_themes, plan_days, theme_for


def test_start_and_end_count_both_days() -> None:
    trip = trip_dates({"start": "2026-05-04", "end": "2026-05-10"})
    assert trip == TripDates(7, date(2026, 5, 4))
    assert trip.day_date(3) == date(2026, 5, 6)
    assert trip.end == date(2026, 5, 10)
    assert trip_dates({"start": "2028-02-28", "end": "2028-03-01"}).days == 3  # a leap year
    assert trip_dates({"duration": 5.0}) == TripDates(5)
    assert TripDates(5).day_date(1) is None


@pytest.mark.parametrize(
    ("dates", "violations"),
    [
        ({"start": "2026-05-04", "end": "2026-05-04"}, []),
        ({"start": "2026-05-01", "end": "2026-05-30"}, []),
        ({"duration": 30}, []),
        ({"start": "2026-05-10", "end": "2026-05-04"}, [("end", "must not be before start")]),
        (
            {"start": "2026-05-01", "end": "2026-05-31"},
            [("end", "must be within 30 days of start (both days count)")],
        ),
        ({"start": "2026-02-30", "end": "2026-03-02"},
         [("start", "must be a calendar date (YYYY-MM-DD)")]),
        ({"start": "2026-05-04"}, [("end", "is required")]),
        ({"end": "2026-05-04"}, [("start", "is required")]),
        ({}, [("", "must have start and end, or duration")]),
        ({"start": "2026-05-04", "duration": 3},
         [("duration", "must not be given with start and end")]),
    ],
)  # fmt: skip
def test_date_rules_the_schema_cannot_state(
    dates: dict[str, Any], violations: list[tuple[str, str]]
) -> None:
    assert date_violations(dates) == violations


def test_interests_find_their_themes_by_whole_words() -> None:
    assert theme_for("Street food").key == "food"
    assert theme_for("TAPAS!").key == "food"
    assert theme_for("Gaudí architecture").key == "architecture"
    assert theme_for("artisan bread").key == "artisan_bread"  # "art" is not in "artisan"
    own = theme_for("  {birds}  ")
    assert own.title == "{birds}"
    assert "{birds}" in own.variants[0][0].format(place="Lima")


def test_days_follow_the_interests_with_a_breather_every_third_day() -> None:
    themes = [t.key for t in day_themes(["food", "Architecture", "tapas"], 7)]
    assert themes == ["food", "architecture", "landmarks", "food", "architecture",
                      "neighbourhoods", "food"]  # fmt: skip
    assert [t.key for t in day_themes([], 4)] == [
        "landmarks", "neighbourhoods", "day_trip", "landmarks",
    ]  # fmt: skip
    # An interest that is itself a breather is not offered again as one.
    assert [t.key for t in day_themes(["sightseeing"], 3)] == [
        "landmarks", "landmarks", "neighbourhoods",
    ]  # fmt: skip


def test_each_day_has_three_slots_the_first_arriving_and_the_last_leaving() -> None:
    days = plan_days("Lisbon", ["food"], 4)
    assert [d["day"] for d in days] == [1, 2, 3, 4]
    assert days[0]["slots"]["morning"].startswith("Arrive in Lisbon")
    assert days[-1]["slots"]["evening"].startswith("Pack and leave")
    # Food again on day 2, with its second set of slots; on day 4 with the first again.
    assert days[1]["slots"]["morning"] == (
        "Coffee and pastries where locals queue, then a smaller market off the tourist trail"
    )
    assert days[3]["slots"]["afternoon"] == "A tasting walk or a cooking class on the local dishes"
    assert all(set(d["slots"]) == {"morning", "afternoon", "evening"} for d in days)
    (single,) = plan_days("Lisbon", [], 1)
    assert not single["slots"]["morning"].startswith("Arrive")
    assert not single["slots"]["evening"].startswith("Pack")
