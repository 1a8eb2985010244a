"""Reading a traveller's question to a concierge: what kind of request it is, what it
names (a day, a time, a party, a place), and what the trip's context adds.

:func:`understand` is pure and deterministic. The kinds:

- ``booking``: reserving or buying something (a table, tickets, a tour, a car);
- ``directions``: getting from one place to another;
- ``opening_hours``: when a place opens or closes;
- ``recommendation``: what to eat, see or do, and where;
- ``general``: anything else (visas, tipping, weather, money, safety).

Each kind is scored by the cues it finds; the highest wins, ties going to the more
specific kind (the order above), so "Can you book a table at a good Italian place?" is a
booking that happens to want a recommendation too (``also``).

:func:`offline_answer` is what the ``local`` provider answers: no facts it cannot know
(no invented opening hours or addresses), but the steps to take, filled in with what the
question and the trip say, and what is still missing to act on it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

QuestionKind = Literal["booking", "directions", "opening_hours", "recommendation", "general"]

#: Kinds in tie-break order: the more specific first.
KINDS: Final[tuple[QuestionKind, ...]] = (
    "booking",
    "directions",
    "opening_hours",
    "recommendation",
    "general",
)

KIND_LABELS: Final[Mapping[QuestionKind, str]] = {
    "booking": "Booking",
    "directions": "Directions",
    "opening_hours": "Opening hours",
    "recommendation": "Recommendation",
    "general": "General question",
}


def _cues(*weighted: tuple[int, str]) -> tuple[tuple[re.Pattern[str], int], ...]:
    return tuple((re.compile(cue, re.IGNORECASE), weight) for weight, cue in weighted)


#: Each kind's cues with their weights: a word that can only mean the kind ("book",
#: "reserve") weighs more than one that leans to it ("tickets", "hours").
_PATTERNS: Final[Mapping[QuestionKind, tuple[tuple[re.Pattern[str], int], ...]]] = {
    "booking": _cues(
        (3, r"\bbook(?:ing|ed)?\b"),
        (3, r"\breserv(?:e|ation|ations|ing)\b"),
        (2, r"\btickets?\b"),
        (2, r"\btable for\b"),
        (2, r"\b(?:get|find) (?:us |me )?a table\b"),
        (1, r"\bavailab(?:le|ility)\b"),
        (3, r"\b(?:rent|hire) (?:a |an )?(?:car|bike|scooter|boat)\b"),
        (3, r"\bcancel (?:my|our|the) (?:booking|reservation|room|table|tickets?)\b"),
        (2, r"\b(?:check[- ]?in|check[- ]?out) (?:early|late)\b"),
        (2, r"\bsign (?:me|us) up\b"),
    ),
    "directions": _cues(
        (3, r"\bhow (?:do|can|should) (?:i|we) get (?:to|from|there|back)\b"),
        (3, r"\bhow to get (?:to|from|there)\b"),
        (3, r"\bdirections?\b"),
        (2, r"\broute\b"),
        (2, r"\bhow far\b"),
        (2, r"\bdistance\b"),
        (2, r"\bwalk(?:ing)? (?:to|from)\b"),
        (2, r"\b(?:bus|train|metro|subway|tram|taxi|uber|ferry|shuttle) (?:to|from)\b"),
        (2, r"\bnearest (?:metro|subway|station|stop|bus stop|tram stop)\b"),
        (2, r"\b(?:from|to) the airport\b"),
        (2, r"\bget around\b"),
        (2, r"\bwhich (?:bus|train|line|metro)\b"),
    ),
    "opening_hours": _cues(
        (3, r"\bopen(?:ing)? (?:hours|times)\b"),
        (2, r"\b(?:is|are) (?:\S+ ){1,8}?open\b"),
        (3, r"\b(?:when|what time) does (?:\S+ ){1,8}?(?:open|close)\b"),
        (3, r"\bclos(?:e|es|ing) (?:time|at)\b"),
        (2, r"\bopen (?:on|at|late|today|tomorrow|tonight)\b"),
        (2, r"\bstill open\b"),
        (1, r"\bhours\b"),
    ),
    "recommendation": _cues(
        (3, r"\brecommend(?:ation|ations|ed)?\b"),
        (3, r"\bsuggest(?:ion|ions)?\b"),
        (2, r"\bbest\b"),
        (2, r"\bgood (?:\w+ )?(?:places?|restaurants?|bars?|cafes?|spots?|beach(?:es)?|areas?"
            r"|hikes?|museums?)\b"),
        (2, r"\bwhere (?:should|can|could) (?:i|we) (?:eat|go|stay|drink|shop|swim|see)\b"),
        (2, r"\bwhat (?:should|can|could) (?:i|we) (?:do|see|eat|visit)\b"),
        (3, r"\bthings to do\b"),
        (2, r"\bworth (?:visiting|seeing|a visit|trying)\b"),
        (2, r"\bideas? for\b"),
        (2, r"\bmust[- ]see\b"),
        (1, r"\b(?:family|kid)[- ]friendly\b"),
    ),
}  # fmt: skip

_DAY = re.compile(
    r"\b(?:today|tonight|tomorrow(?: morning| evening| night)?|this (?:morning|afternoon|"
    r"evening|weekend)|(?:on |next )?(?:monday|tuesday|wednesday|thursday|friday|saturday|"
    r"sunday)s?|new year'?s (?:eve|day)|christmas(?: eve| day)?|easter)\b",
    re.IGNORECASE,
)
_TIME = re.compile(
    r"\b(?:at |around |by |after |before )?(?:[01]?\d|2[0-3])(?:[:.h][0-5]\d)?\s?(?:am|pm)\b"
    r"|\b(?:at |around |by |after |before )(?:[01]?\d|2[0-3])[:.h][0-5]\d\b"
    r"|\b(?:at )?(?:noon|midnight|lunch ?time|dinner ?time|sunrise|sunset)\b",
    re.IGNORECASE,
)
_NUMBER_WORDS: Final = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}  # fmt: skip
_PARTY = re.compile(
    r"\b(?:for|party of|group of|table for)\s+(?P<n>\d{1,2}|"
    + "|".join(_NUMBER_WORDS)
    + r")(?:\s+(?:people|persons|adults|of us|guests|pax))?\b(?!\s*(?:am|pm|:|h\b|nights?|days?"
    r"|hours?|minutes?|euros?|dollars?|pounds?))",
    re.IGNORECASE,
)
_WITH_KIDS = re.compile(r"\b(?:kids?|children|child|toddlers?|baby|babies|family)\b", re.I)
#: A place as a question names it: a name ("Cervejaria Ramiro", "the Castelo de São
#: Jorge") or one of the places every trip has ("the airport", "our hotel").
_PLACE_BODY = (
    r"(?:the\s+)?[A-Z][\w'\u00c0-\u024f-]*(?:\s+(?:de|del|la|le|of|di|da|the|"
    r"[A-Z][\w'\u00c0-\u024f-]*))*"
    r"|(?i:(?:the|our|my)\s+(?:airport|(?:train\s+|bus\s+|metro\s+)?station|port|"
    r"(?:cruise|ferry)\s+terminal|hotel|apartment|flat|hostel|city\s+cent(?:re|er)|"
    r"old\s+town|beach|harbou?r))"
)
_PLACE = re.compile(
    r"\b(?:to|at|in|near|from|around|visit|visiting|does|is|the)\s+(?P<place>" + _PLACE_BODY + ")"
)
_FROM = re.compile(r"\b(?i:from)\s+(?P<place>" + _PLACE_BODY + ")")
_TO = re.compile(r"\b(?i:to|reach)\s+(?P<place>" + _PLACE_BODY + ")")
#: "Our hotel" is where the trip's context says the party stays.
_OWN_PLACES: Final = frozenset(
    f"{who} {what}" for who in ("our", "my", "the") for what in ("hotel", "apartment", "flat")
)
_NOT_PLACES: Final = frozenset({"I", "We", "My", "Our", "Can", "Could", "Is", "Are"})
_TOPICS: Final[Mapping[str, str]] = {
    "restaurant": r"restaurants?|tables?|dinner|lunch|brunch|breakfast|eat|food|tapas|pizza|sushi"
    r"|italian|seafood|vegetarian|vegan",
    "bar": r"bars?|drinks?|cocktails?|wine|beer|pub",
    "cafe": r"caf[eé]s?|coffee",
    "museum": r"museums?|galler(?:y|ies)|exhibitions?",
    "sight": r"sights?|landmarks?|monuments?|cathedral|castle|palace|tower|viewpoint",
    "tour": r"tours?|guided|excursions?|day trips?",
    "transport": r"taxi|uber|bus|train|metro|subway|tram|ferry|airport|station|car|bike",
    "show": r"concerts?|shows?|theat(?:re|er)|opera|match|game|festival",
    "beach": r"beach(?:es)?|swim(?:ming)?",
    "shopping": r"shop(?:s|ping)?|market|souvenirs?",
    "outdoors": r"hikes?|hiking|parks?|gardens?|walks?",
    "pharmacy": r"pharmac(?:y|ies)|doctor|hospital",
}
_TOPIC_PATTERNS: Final = {
    topic: re.compile(rf"\b(?:{words})\b", re.IGNORECASE) for topic, words in _TOPICS.items()
}

#: Which parts of the trip's context matter to each kind of question.
_RELEVANT: Final[Mapping[QuestionKind, tuple[str, ...]]] = {
    "booking": ("destination", "dates", "party", "budget", "accommodation", "language"),
    "directions": ("destination", "accommodation", "party", "mobility", "transport"),
    "opening_hours": ("destination", "dates"),
    "recommendation": (
        "destination", "interests", "party", "budget", "dietary", "dates", "accommodation",
        "mobility",
    ),
    "general": ("destination", "dates", "party", "nationality", "language"),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Understanding:
    """What a question asks and what it names; Struct-safe through :meth:`to_dict`."""

    kind: QuestionKind
    #: Other kinds the question also touches (a booking that wants a recommendation).
    also: tuple[QuestionKind, ...]
    scores: Mapping[str, int]
    day: str = ""
    time: str = ""
    party_size: int = 0
    with_children: bool = False
    places: tuple[str, ...] = ()
    #: Where a route starts and ends, when the question says ("from the airport").
    origin: str = ""
    goal: str = ""
    topics: tuple[str, ...] = ()
    #: The trip's context, only the parts that matter to this kind, as given.
    context: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": KIND_LABELS[self.kind],
            "also": list(self.also),
            "scores": dict(self.scores),
            "day": self.day,
            "time": self.time,
            "party_size": self.party_size,
            "with_children": self.with_children,
            "places": list(self.places),
            "origin": self.origin,
            "goal": self.goal,
            "topics": list(self.topics),
            "context": dict(self.context),
        }


def classify(question: str) -> tuple[QuestionKind, tuple[QuestionKind, ...], dict[str, int]]:
    """The question's kind, the other kinds it touches, and every kind's score."""
    cued = KINDS[:-1]  # "general" is what no cue points at
    scores: dict[str, int] = {
        kind: sum(weight for pattern, weight in _PATTERNS[kind] if pattern.search(question))
        for kind in cued
    }
    ranked = sorted((k for k in cued if scores[k] > 0), key=lambda k: -scores[k])
    if not ranked:
        return "general", (), scores
    # sorted() is stable: equal scores keep KINDS' order, the more specific first.
    return ranked[0], tuple(ranked[1:]), scores


def understand(question: str, context: Mapping[str, Any] | None = None) -> Understanding:
    """Classify ``question`` and pull out what it names and what ``context`` adds."""
    text = " ".join(question.split())
    kind, also, scores = classify(text)
    day = _first(_DAY, text)
    time = _first(_TIME, text)
    party = _party_size(text)
    places = tuple(
        dict.fromkeys(
            place
            for match in _PLACE.finditer(text)
            if (place := match.group("place").strip()) and place not in _NOT_PLACES
        )
    )
    topics = tuple(topic for topic, pattern in _TOPIC_PATTERNS.items() if pattern.search(text))
    return Understanding(
        kind=kind,
        also=also,
        scores=scores,
        day=day,
        time=time,
        party_size=party,
        with_children=bool(_WITH_KIDS.search(text)),
        places=places[:5],
        origin=_first_place(_FROM, text),
        goal=_first_place(_TO, text),
        topics=topics,
        context=relevant_context(kind, context or {}),
    )


def relevant_context(kind: QuestionKind, context: Mapping[str, Any]) -> dict[str, Any]:
    """The members of the trip's ``context`` that matter to a ``kind`` question, blank
    ones left out."""
    return {
        key: context[key]
        for key in _RELEVANT[kind]
        if key in context and context[key] not in (None, "", [], {})
    }


def _first(pattern: re.Pattern[str], text: str) -> str:
    found = pattern.search(text)
    return " ".join(found.group(0).split()) if found else ""


def _first_place(pattern: re.Pattern[str], text: str) -> str:
    found = pattern.search(text)
    place = found.group("place").strip() if found else ""
    return "" if place in _NOT_PLACES else place


def _party_size(text: str) -> int:
    found = _PARTY.search(text)
    if not found:
        return 0
    n = found.group("n").casefold()
    return _NUMBER_WORDS.get(n) or int(n)


# --- the local answer --------------------------------------------------------------------


def party_of(context: Mapping[str, Any], asked: int = 0) -> tuple[int, int]:
    """(adults, children) from the question's party size or the trip's ``party``: an
    object with ``adults`` and ``children``, or a number."""
    party = context.get("party")
    adults = children = 0
    if isinstance(party, Mapping):
        adults = _count(party.get("adults"))
        children = _count(party.get("children"))
    elif isinstance(party, int | float) and not isinstance(party, bool):
        adults = _count(party)
    if asked:
        # "A table for four" counts everyone: the trip's children are among the four.
        children = children if children < asked else 0
        return asked - children, children
    return adults, children


def _count(value: object) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(0, round(value))
    return 0


def _people(adults: int, children: int) -> str:
    if not adults and not children:
        return ""
    parts = []
    if adults:
        parts.append(f"{adults} adult{'s' if adults != 1 else ''}")
    if children:
        parts.append(f"{children} child{'ren' if children != 1 else ''}")
    return " and ".join(parts)


def _dates(context: Mapping[str, Any]) -> str:
    dates = context.get("dates")
    if isinstance(dates, Mapping):
        start, end = _text(dates.get("start")), _text(dates.get("end"))
        if start and end:
            return f"{start} to {end}"
        return start or end
    return _text(dates)


def _text(value: object) -> str:
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, list | tuple):
        return ", ".join(t for t in (_text(v) for v in value) if t)
    return ""


def trip_facts(understanding: Understanding) -> list[str]:
    """The facts an answer may use, one line each: what the question named and the
    relevant context, as "Label: value"."""
    u, ctx = understanding, understanding.context
    adults, children = party_of(ctx, u.party_size)
    facts = [f"Kind of question: {KIND_LABELS[u.kind]}"]
    rows = [
        ("Destination", _text(ctx.get("destination"))),
        ("Trip dates", _dates(ctx)),
        ("Day asked about", u.day),
        ("Time asked about", u.time),
        ("Party", _people(adults, children) or ("with children" if u.with_children else "")),
        ("Staying at", _text(ctx.get("accommodation"))),
        ("Places named", ", ".join(u.places)),
        ("Going from", u.origin),
        ("Going to", u.goal),
        ("Looking for", ", ".join(u.topics)),
        ("Interests", _text(ctx.get("interests"))),
        ("Budget", _text(ctx.get("budget"))),
        ("Dietary needs", _text(ctx.get("dietary"))),
        ("Mobility", _text(ctx.get("mobility"))),
        ("Getting around by", _text(ctx.get("transport"))),
        ("Language", _text(ctx.get("language"))),
        ("Nationality", _text(ctx.get("nationality"))),
    ]
    facts += [f"{label}: {value}" for label, value in rows if value]
    return facts


def missing_details(understanding: Understanding) -> list[str]:
    """What the concierge would still need to act, as questions back to the traveller."""
    u, ctx = understanding, understanding.context
    adults, children = party_of(ctx, u.party_size)
    where = _text(ctx.get("destination")) or ", ".join(u.places)
    missing: list[str] = []
    if u.kind == "booking":
        if not u.day and not _dates(ctx):
            missing.append("Which date would you like?")
        if not u.time and ("restaurant" in u.topics or "show" in u.topics):
            missing.append("What time suits you?")
        if not adults and not children:
            missing.append("How many people is it for?")
        if not u.places and not u.topics:
            missing.append("What would you like to book (a restaurant, a tour, tickets)?")
    elif u.kind == "directions":
        if not (u.origin or _text(ctx.get("accommodation")) or len(u.places) > 1):
            missing.append("Where will you be starting from?")
        if not (u.goal or u.places):
            missing.append("Where would you like to go?")
    elif u.kind == "opening_hours":
        if not u.places:
            missing.append("Which place do you mean?")
        if not u.day and not _dates(ctx):
            missing.append("Which day will you go?")
    elif u.kind == "recommendation":
        if not where:
            missing.append("Which city or area are you in?")
        if not u.topics and not _text(ctx.get("interests")):
            missing.append("What do you enjoy: food, museums, the outdoors, nightlife?")
        if not _text(ctx.get("budget")):
            missing.append("What budget do you have in mind?")
    elif not where:
        missing.append("Where are you travelling to?")
    return missing


def _own(place: str, staying: str) -> str:
    """``place``, with "our hotel" as the trip's accommodation when it is known."""
    return staying if staying and place.casefold() in _OWN_PLACES else place


#: How the offline answers name what a question is about.
_BOOKABLE: Final[Mapping[str, str]] = {
    "restaurant": "a table",
    "tour": "a tour",
    "show": "tickets",
    "museum": "tickets",
    "sight": "tickets",
    "transport": "your transport",
    "beach": "a beach spot",
}
_FINDABLE: Final[Mapping[str, str]] = {
    "restaurant": "places to eat",
    "bar": "bars",
    "cafe": "cafés",
    "museum": "museums",
    "sight": "sights",
    "tour": "tours",
    "transport": "ways to get around",
    "show": "shows",
    "beach": "beaches",
    "shopping": "places to shop",
    "outdoors": "walks and parks",
    "pharmacy": "pharmacies",
}


def offline_answer(understanding: Understanding) -> str:
    """A useful answer with no model: the steps for this kind of request, filled in with
    what the question and the trip say, never a fact nobody gave (no hours, no prices)."""
    u, ctx = understanding, understanding.context
    question_kind = u.kind
    adults, children = party_of(ctx, u.party_size)
    people = _people(adults, children)
    where = _text(ctx.get("destination")) or (u.places[-1] if u.places else "")
    in_where = f" in {where}" if where else ""
    when = " ".join(p for p in (u.day, u.time) if p) or _dates(ctx)
    place = u.places[0] if u.places else ""
    what = u.topics[0] if u.topics else ""
    staying = _text(ctx.get("accommodation"))
    paragraphs: list[str] = []
    if question_kind == "booking":
        thing = place or _BOOKABLE.get(what, "your booking")
        lines = [f"To book {thing}{in_where}"]
        if people:
            lines.append(f" for {people}")
        if when:
            lines.append(f" ({when})")
        paragraphs.append(
            "".join(lines) + ": check availability on the venue's own website or booking "
            "page first, as third-party sites often hold fewer slots; if it shows as full, "
            "call them, since many places keep tables or tickets back for phone and walk-in "
            "guests."
        )
        tips = "Have the date and time, the number of guests and a phone number ready"
        if children:
            tips += ", and say you are bringing children (high chairs, child tickets)"
        paragraphs.append(
            tips + ". Before you confirm, read the cancellation policy and whether a deposit "
            "or card guarantee is taken, and keep the confirmation on your phone."
        )
    elif question_kind == "directions":
        start = _own(u.origin, staying) or staying
        start = start or (u.places[0] if len(u.places) > 1 else "where you are")
        goal = _own(u.goal, staying) or (u.places[-1] if u.places else "your destination")
        paragraphs.append(
            f"To get from {start} to {goal}{in_where if goal != where else ''}: compare "
            "public transport and a taxi or ride-hailing app in a maps app with the time "
            "you plan to leave, as services change in the evening and at weekends."
        )
        extra = "Buy or load a ticket before boarding where the network asks for it"
        if children or u.with_children:
            extra += ", and allow extra time with children: step-free routes and lifts are "
            extra += "shown in most transit apps"
        mobility = _text(ctx.get("mobility"))
        if mobility:
            extra += f"; with your mobility needs ({mobility}), choose step-free routes"
        paragraphs.append(extra + ". Save the address offline in case you lose signal.")
    elif question_kind == "opening_hours":
        target = place or "the place"
        day = u.day or (f"during your trip ({_dates(ctx)})" if _dates(ctx) else "on the day")
        paragraphs.append(
            f"Check {target}'s own website or its listing in a maps app for its hours "
            f"{day}: those are the ones kept current. Hours often differ on Sundays, public "
            "holidays and out of season, and last entry is usually earlier than closing."
        )
        paragraphs.append(
            "If it matters, call ahead the day before; for museums and sights, booking a "
            "timed ticket also confirms that it is open when you go."
        )
    elif question_kind == "recommendation":
        interests = _text(ctx.get("interests"))
        subject = _FINDABLE.get(what) or (
            f"places for {interests.split(',')[0]}" if interests else "places"
        )
        paragraphs.append(
            f"To find good {subject}{in_where}: shortlist three from recent reviews in a maps "
            "app (sort by recent, not by rating alone), then check each one's own site for "
            "menus, prices and hours."
        )
        hints = []
        if adults + children > 4:
            hints.append(f"book ahead: a table for {adults + children} is hard to get")
        if children or u.with_children:
            hints.append("choose family-friendly places and go early")
        if budget := _text(ctx.get("budget")):
            hints.append(f"keep to your budget ({budget}) by checking prices before you go")
        if dietary := _text(ctx.get("dietary")):
            hints.append(f"filter for {dietary}")
        if staying:
            hints.append(f"start near {staying} to save travel time")
        if hints:
            paragraphs.append("For your trip: " + "; ".join(hints) + ".")
    else:
        subject = f" for {where}" if where else ""
        paragraphs.append(
            f"For a general question like this{subject}, the most reliable sources are the "
            "official ones: the destination's tourist office, the government's travel advice "
            "for your nationality, and your accommodation's front desk, who know the local "
            "details."
        )
        if when:
            paragraphs.append(f"Check what applies to your dates ({when}).")
    missing = missing_details(u)
    if missing:
        paragraphs.append("To help further, tell me: " + " ".join(missing))
    return "\n\n".join(paragraphs)
