"""A trip's budget: what a day costs by travel style, scaled to fit the money a traveller
has, with what is left over or still missing. Pure integer arithmetic in minor units
(cents), so every table adds up to the cent.

The model, per traveller:

- **Rates.** :data:`DAILY_RATES_EUR_CENTS` gives what a day costs in each style at a
  destination of average prices, by category: lodging (per *night*: a trip of n days has
  n - 1), food, activities and local transport (per day). They are multiplied by the
  destination's price level (:data:`PRICE_LEVELS`, in percent of average; 100 when the
  destination is not in the table) and converted at a reference rate
  (:data:`EUR_TO_CURRENCY`), each rounded half up to a whole minor unit.
- **The estimate** is the style's rates times the nights and days.
- **Fitting a stated budget.** An estimate within the budget is kept as it is, and the
  difference is the reserve. One over it is scaled down towards the *floor* (the
  ``budget`` style's figures: a hostel bed, street food, free sights) until it fits:
  every category keeps its floor and gives up the same share of what it has above it, so
  the plan spends exactly the budget. When even the floor costs more, the floor is the
  plan and the difference says how much is missing.

The figures are rough planning numbers, not prices: good for "can I afford a week in
Zurich in comfort on 2,000 EUR", not for booking.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

#: The travel styles, cheapest first.
STYLES: Final = ("budget", "comfort", "luxury")
#: The budget's categories, in the order tables show them.
CATEGORIES: Final = ("lodging", "food", "activities", "transport")
#: Lodging is paid per night; the other categories per day.
PER_NIGHT: Final = frozenset({"lodging"})

#: What one traveller spends per night (lodging) or day (the rest), in EUR cents, at a
#: destination of average prices (price level 100).
DAILY_RATES_EUR_CENTS: Final[Mapping[str, Mapping[str, int]]] = {
    "budget": {"lodging": 4000, "food": 2500, "activities": 1500, "transport": 800},
    "comfort": {"lodging": 12000, "food": 5500, "activities": 3500, "transport": 1500},
    "luxury": {"lodging": 35000, "food": 12000, "activities": 8000, "transport": 5000},
}

#: The style whose figures are the least a trip can cost (see the module's docstring).
FLOOR_STYLE: Final = "budget"

#: Rough price levels of some destinations, in percent of the average (100), for
#: travellers' spending (lodging, food, sights, transport).
PRICE_LEVELS: Final[Mapping[str, int]] = {
    "amsterdam": 125, "athens": 85, "bangkok": 55, "barcelona": 100, "berlin": 100,
    "budapest": 70, "buenos aires": 60, "cape town": 65, "copenhagen": 135, "dubai": 120,
    "dublin": 125, "edinburgh": 115, "florence": 105, "hanoi": 45, "istanbul": 65,
    "kyoto": 105, "lisbon": 85, "london": 140, "madrid": 95, "marrakech": 55,
    "mexico city": 65, "new york": 150, "oslo": 140, "paris": 130, "porto": 80,
    "prague": 75, "reykjavik": 150, "rome": 110, "san francisco": 145, "seoul": 100,
    "singapore": 130, "stockholm": 125, "sydney": 125, "tokyo": 110, "venice": 125,
    "vienna": 105, "zurich": 160,
}  # fmt: skip

#: Units of each currency one euro buys: fixed reference rates for estimating, not
#: quotes. The keys are the currencies a budget may be stated in.
EUR_TO_CURRENCY: Final[Mapping[str, Decimal]] = {
    code: Decimal(rate)
    for code, rate in {
        "EUR": "1", "USD": "1.08", "GBP": "0.85", "CHF": "0.95", "JPY": "165",
        "AUD": "1.65", "CAD": "1.5", "NZD": "1.8", "SEK": "11.5", "NOK": "11.7",
        "DKK": "7.46", "PLN": "4.3", "CZK": "25", "HUF": "400", "MXN": "20",
        "BRL": "6", "INR": "92", "CNY": "7.8", "THB": "38", "SGD": "1.45",
        "ZAR": "20", "TRY": "37", "KRW": "1500",
    }.items()
}  # fmt: skip

_CENT: Final = Decimal(1)


def to_minor(amount: float | int | str | Decimal) -> int:
    """An amount in major units (``12.345``) as whole minor units, rounded half up (1235)."""
    return int((Decimal(str(amount)) * 100).quantize(_CENT, rounding=ROUND_HALF_UP))


def to_major(minor: int) -> float:
    """Minor units as a major amount with two decimals (1235 -> 12.35)."""
    return float(Decimal(minor) / 100)


def price_level(destination: str) -> int:
    """The destination's price level in percent (:data:`PRICE_LEVELS`): its first part
    before a comma, in any case and with or without accents; 100 if unknown."""
    city = destination.split(",", 1)[0]
    folded = "".join(
        ch for ch in unicodedata.normalize("NFKD", city) if not unicodedata.combining(ch)
    )
    return PRICE_LEVELS.get(" ".join(folded.casefold().split()), 100)


def daily_rates(style: str, level: int, currency: str) -> dict[str, int]:
    """The style's rates (per night for lodging, per day for the rest) at price level
    ``level`` (percent), in minor units of ``currency``, each rounded half up."""
    rate = EUR_TO_CURRENCY[currency]
    return {
        category: int((Decimal(cents * level) / 100 * rate).quantize(_CENT, rounding=ROUND_HALF_UP))
        for category, cents in DAILY_RATES_EUR_CENTS[style].items()
    }


def totals(rates: Mapping[str, int], days: int) -> dict[str, int]:
    """Each category's rate times its nights (``days - 1``) or days."""
    nights = max(0, days - 1)
    return {c: rates[c] * (nights if c in PER_NIGHT else days) for c in CATEGORIES}


def fit(estimate: Mapping[str, int], floor: Mapping[str, int], budget: int) -> dict[str, int]:
    """``estimate`` scaled towards ``floor`` to total exactly ``budget``: each category
    keeps its floor and the same share of what it has above it, the last minor units going
    to the largest remainders (the earlier category on a tie). ``budget`` must lie between
    the floor's total and the estimate's."""
    above = {c: estimate[c] - floor[c] for c in CATEGORIES}
    spare, room = budget - sum(floor.values()), sum(above.values())
    assert 0 <= spare <= room
    if room == 0:
        return dict(floor)
    shares = {c: divmod(above[c] * spare, room) for c in CATEGORIES}
    planned = {c: floor[c] + shares[c][0] for c in CATEGORIES}
    left = budget - sum(planned.values())
    for c in sorted(CATEGORIES, key=lambda c: (-shares[c][1], CATEGORIES.index(c)))[:left]:
        planned[c] += 1
    return planned


@dataclass(frozen=True, slots=True)
class TripBudget:
    """A trip's budget, every amount in minor units of ``currency``."""

    currency: str
    style: str
    days: int
    price_level: int
    #: The style's rates: per night for lodging, per day for the rest.
    rates: Mapping[str, int]
    #: The style's figures for the whole trip, before fitting a budget.
    estimate: Mapping[str, int]
    #: What the plan spends, per category.
    planned: Mapping[str, int]
    #: The budget stated, if one was.
    stated: int | None

    @property
    def nights(self) -> int:
        return max(0, self.days - 1)

    @property
    def total(self) -> int:
        return sum(self.planned.values())

    @property
    def difference(self) -> int | None:
        """The stated budget less the plan: left over if positive, missing if negative."""
        return None if self.stated is None else self.stated - self.total

    @property
    def status(self) -> str:
        """``estimate`` (no budget stated), ``within`` it as planned, ``scaled`` down to
        it, or ``over`` it even at the floor."""
        if self.stated is None:
            return "estimate"
        if self.total > self.stated:
            return "over"
        return "scaled" if self.total < sum(self.estimate.values()) else "within"

    def per_day(self) -> list[dict[str, int]]:
        """Each day's share of each category (lodging on the days with a night after
        them), the odd minor units on the earliest days; the columns add up to ``planned``."""
        columns = {
            c: spread(self.planned[c], self.nights if c in PER_NIGHT else self.days, self.days)
            for c in CATEGORIES
        }
        return [
            {"day": n + 1, **{c: columns[c][n] for c in CATEGORIES},
             "total": sum(columns[c][n] for c in CATEGORIES)}
            for n in range(self.days)
        ]  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """As the job's result shows it: amounts in major units (two decimals)."""
        difference = self.difference
        return {
            "currency": self.currency,
            "style": self.style,
            "days": self.days,
            "nights": self.nights,
            "price_level": self.price_level,
            "status": self.status,
            "stated": None if self.stated is None else to_major(self.stated),
            "estimate": to_major(sum(self.estimate.values())),
            "total": to_major(self.total),
            "difference": None if difference is None else to_major(difference),
            "categories": [
                {
                    "category": c,
                    "rate": to_major(self.rates[c]),
                    "per": "night" if c in PER_NIGHT else "day",
                    "estimate": to_major(self.estimate[c]),
                    "planned": to_major(self.planned[c]),
                }
                for c in CATEGORIES
            ],
            "per_day": [
                {k: (v if k == "day" else to_major(v)) for k, v in day.items()}
                for day in self.per_day()
            ],
        }


def spread(amount: int, parts: int, days: int) -> list[int]:
    """``amount`` in ``parts`` equal shares over the first ``parts`` of ``days`` days, the
    remainder one unit each from the first day; zero on the rest."""
    if parts <= 0:
        return [0] * days
    share, rest = divmod(amount, parts)
    return [share + (1 if n < rest else 0) if n < parts else 0 for n in range(days)]


def plan_budget(
    style: str, days: int, destination: str, currency: str = "EUR", stated: int | None = None
) -> TripBudget:
    """The budget of a ``days``-day trip to ``destination`` in ``style``, fitted to the
    ``stated`` budget (minor units of ``currency``) if there is one."""
    level = price_level(destination)
    rates = daily_rates(style, level, currency)
    estimate = totals(rates, days)
    floor = totals(daily_rates(FLOOR_STYLE, level, currency), days)
    if stated is None or sum(estimate.values()) <= stated:
        planned = estimate
    elif sum(floor.values()) >= stated:
        planned = floor
    else:
        planned = fit(estimate, floor, stated)
    return TripBudget(currency, style, days, level, rates, estimate, planned, stated)


def money(minor: int) -> str:
    """Minor units as a figure with thousands separators: 123456 -> "1,234.56"."""
    sign = "-" if minor < 0 else ""
    major, cents = divmod(abs(minor), 100)
    return f"{sign}{major:,}.{cents:02d}"
