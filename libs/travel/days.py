"""A trip's days: a theme for each, from the traveller's interests, and what to do in the
morning, afternoon and evening. Deterministic: the same request, the same plan.

Interests are matched to :data:`THEMES` by their words ("street food" and "tapas" are
both food); one that matches none becomes a theme of its own, named as the traveller
wrote it. Days take the interests' themes in turn, and every third day is a change of
scene from :data:`BREATHER_THEMES` (landmarks, neighbourhoods, a day trip...), so a week
with two interests is not the same two days over and over. A theme seen again comes back
with its second set of slots. The first day starts with arriving and the last ends with
leaving.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

#: The parts of a day, in order.
SLOTS: Final = ("morning", "afternoon", "evening")


@dataclass(frozen=True, slots=True)
class Theme:
    """What a day can be about; its slots' text has ``{place}`` for the destination."""

    key: str
    title: str
    #: Words in an interest that select this theme (matched whole, in any case).
    words: tuple[str, ...]
    #: Two sets of (morning, afternoon, evening): the first visit and a second one.
    variants: tuple[tuple[str, str, str], tuple[str, str, str]]


def _theme(key: str, title: str, words: str, *slots: str) -> Theme:
    """A theme from its six slots: the first visit's three, then the second's."""
    first, second = (slots[0], slots[1], slots[2]), (slots[3], slots[4], slots[5])
    return Theme(key, title, tuple(w for w in words.split(",") if w), (first, second))


#: The themes interests are matched to, and the change-of-scene ones.
THEMES: Final = (
    _theme(
        "food",
        "Food and markets",
        "food,foodie,cuisine,gastronomy,culinary,eating,restaurants,tapas,street food,cooking",
        "Breakfast at the main food market of {place}, tasting what is in season",
        "A tasting walk or a cooking class on the local dishes",
        "Dinner at a neighbourhood favourite: order the dish {place} is known for",
        "Coffee and pastries where locals queue, then a smaller market off the tourist trail",
        "A food tour of a district you have not seen yet",
        "Small plates and a local drink at the bars around the old centre",
    ),
    _theme(
        "art",
        "Art and galleries",
        "art,arts,gallery,galleries,painting,design,street art",
        "The major art museum of {place}, before the crowds",
        "Smaller galleries and studios nearby",
        "An exhibition opening or a late museum night, if one is on",
        "A modern or contemporary collection",
        "A street-art walk through a creative quarter",
        "Dinner in the gallery district",
    ),
    _theme(
        "history",
        "History and heritage",
        "history,historic,historical,heritage,castle,castles,ruins,archaeology,medieval",
        "A guided walk through the oldest part of {place}",
        "The city's history museum, or its oldest monument inside",
        "The old town lit up at night, on foot",
        "A fortress, palace or ruins on the edge of the centre",
        "The stories of one district: a walking tour or an audio guide",
        "Dinner in a historic inn or café",
    ),
    _theme(
        "museums",
        "Museums",
        "museum,museums,science",
        "The museum {place} is most proud of; book the first slot",
        "A smaller, specialist museum that suits your interests",
        "A relaxed dinner near the museum quarter",
        "A second major museum, with a break at its café",
        "A quirky small museum few visitors find",
        "An evening concert or talk, if one is on",
    ),
    _theme(
        "architecture",
        "Architecture",
        "architecture,buildings,churches,cathedrals,cathedral,gaudi,modernism,skyline",
        "The landmark buildings of {place}, outside and in",
        "An architecture walk through a district of one period",
        "The skyline from a rooftop or viewpoint at sunset",
        "A cathedral or great church, with its tower if it can be climbed",
        "A modern quarter and its newest buildings",
        "Dinner in a building worth seeing for itself",
    ),
    _theme(
        "nature",
        "Parks and nature",
        "nature,outdoors,park,parks,garden,gardens,hiking,walking,mountains,wildlife,hills",
        "A morning walk in the largest park or garden of {place}",
        "A hike or a viewpoint just outside the centre",
        "A picnic supper or an early, quiet evening",
        "A botanical garden or a nature reserve nearby",
        "A trail with a view over {place}",
        "Sunset from a hill or a riverside",
    ),
    _theme(
        "beach",
        "Sea and beaches",
        "beach,beaches,sea,seaside,coast,swimming,surf,surfing",
        "The nearest good beach, early while it is quiet",
        "A swim, then a walk along the seafront",
        "Seafood by the water",
        "A boat trip or a quieter cove further along the coast",
        "A lesson in surfing, paddleboarding or snorkelling",
        "Drinks at a beach bar at sunset",
    ),
    _theme(
        "nightlife",
        "Nightlife",
        "nightlife,bars,bar,clubs,clubbing,cocktails,party,pubs",
        "A slow morning and a late breakfast",
        "A siesta-friendly afternoon in a café district",
        "The bars of the liveliest quarter of {place}, then a club if you are up for it",
        "Brunch and an easy walk",
        "A rooftop for the late afternoon",
        "A cocktail bar crawl through a different district",
    ),
    _theme(
        "shopping",
        "Shopping and markets",
        "shopping,shops,fashion,vintage,markets,crafts",
        "The independent shops of the old centre of {place}",
        "A flea or craft market",
        "Dinner near the shopping streets",
        "Local designers and concept stores in a newer district",
        "Souvenirs worth carrying home: food, crafts, books",
        "A late-opening market or a night market, if there is one",
    ),
    _theme(
        "music",
        "Music",
        "music,concert,concerts,jazz,opera,live music,festival,festivals",
        "A music museum or a record shop crawl",
        "A walk past the concert halls and a guided tour of one",
        "A live performance: jazz, a concert or the opera",
        "A street where musicians play",
        "A rehearsal or an afternoon recital, if one is on",
        "A small venue with local bands",
    ),
    _theme(
        "family",
        "Family day",
        "family,kids,children,child",
        "A zoo, aquarium or science centre",
        "A playground-friendly park and an ice cream",
        "An early dinner somewhere relaxed",
        "A boat, tram or cable-car ride the children will remember",
        "A hands-on museum",
        "A quiet evening back at the lodging",
    ),
    _theme(
        "sport",
        "Sport and activity",
        "sport,sports,football,cycling,bike,running,climbing",
        "A bike tour of {place}",
        "The stadium or a sports museum",
        "A match or a game, if there is one on",
        "A morning run or a climbing session",
        "A kayak or a bike ride out of the centre",
        "A sports bar to watch the evening's game",
    ),
)

#: Days between the interests' days: a change of scene.
BREATHER_THEMES: Final = (
    _theme(
        "landmarks",
        "Landmarks",
        "landmarks,sightseeing,sights",
        "The one sight {place} is famous for, booked for opening time",
        "A hop between the other best-known sights",
        "A viewpoint over {place} as the lights come on",
        "The landmarks you missed, at an easier pace",
        "A river, harbour or canal trip past the sights",
        "Dinner on a square with a view",
    ),
    _theme(
        "neighbourhoods",
        "Neighbourhoods",
        "neighbourhoods,neighborhoods,local life",
        "A neighbourhood where people of {place} live, its bakery and its market",
        "Wander without a plan: side streets, courtyards, small shops",
        "Dinner where the locals eat",
        "A second neighbourhood, on the other side of the centre",
        "A café afternoon: read, write postcards, watch the street",
        "A neighbourhood bar",
    ),
    _theme(
        "day_trip",
        "A day trip",
        "day trip,day trips,excursion",
        "An early train or bus to a town or sight nearby",
        "Lunch and a walk there",
        "Back to {place} for a late dinner",
        "A second excursion, in the other direction",
        "Time to explore there at your own pace",
        "Back for a quiet evening",
    ),
)

#: A practical word on each theme's day, for the day's note (the ``local`` provider's).
TIPS: Final = {
    "food": "Markets are at their best in the morning and many close by mid-afternoon, so "
    "they come first.",
    "art": "Big museums are calmest at opening time, and a timed ticket bought ahead skips "
    "the queue.",
    "history": "A guide or an audio tour in the morning gives the rest of the day its stories.",
    "museums": "Two big museums in a day is one too many: the second one is kept small.",
    "architecture": "Façades look best in the low light of morning and late afternoon; "
    "interiors fill up around midday.",
    "nature": "Set out early, before the heat and the crowds, and carry water.",
    "beach": "The beach comes early and late: the midday sun is the harshest and the sand "
    "the fullest.",
    "nightlife": "Nightlife starts late in many cities, so the day is kept slow on purpose.",
    "shopping": "Independent shops often open late in the morning; markets are best early.",
    "music": "Check the evening's programme in the morning: small venues sell out on the day.",
    "family": "Short distances and a break after lunch keep the day fun for everyone.",
    "sport": "Tickets for a game go fast: check the fixtures as soon as you arrive.",
    "landmarks": "The famous sights are quietest at opening time: book the first slot.",
    "neighbourhoods": "Nothing to book today: the point is to wander.",
    "day_trip": "Take an early departure, and check the last connection back before you go.",
}
_OWN_THEME_TIP: Final = (
    "Ask locals where they go for it: the best places are rarely the best signposted."
)


def tip_for(theme: Theme) -> str:
    """The practical word on a theme's day (:data:`TIPS`)."""
    return TIPS.get(theme.key, _OWN_THEME_TIP)


_ALL: Final = THEMES + BREATHER_THEMES
_WORD = re.compile(r"[^\w\s]+")


def _fold(text: str) -> str:
    return " ".join(_WORD.sub(" ", text.casefold()).split())


def theme_for(interest: str) -> Theme:
    """The theme an interest asks for: the first whose word it contains (whole words), or
    a theme of its own."""
    folded = f" {_fold(interest)} "
    for theme in _ALL:
        if any(f" {word} " in folded for word in theme.words):
            return theme
    name = " ".join(interest.split())
    # The slots are templates ({place}): the traveller's braces are text, not fields.
    name = name.replace("{", "{{").replace("}", "}}")
    title = " ".join(interest.split())
    return _theme(
        _fold(interest).replace(" ", "_") or "interest", title[:1].upper() + title[1:], "",
        f"Find the best of {name} in {{place}}: ask a local guide or the tourist office",
        f"An afternoon given to {name}",
        "Dinner close to where the afternoon ends",
        f"More {name}: somewhere you heard about yesterday",
        "A slower afternoon nearby",
        "A good dinner to end the day",
    )  # fmt: skip


def day_themes(interests: Sequence[str], days: int) -> list[Theme]:
    """The theme of each day: the interests' themes in turn (each once however often it
    is asked for), every third day a breather theme in turn; breathers only, without
    interests."""
    chosen: list[Theme] = []
    for interest in interests:
        theme = theme_for(interest)
        if theme.key not in {t.key for t in chosen}:
            chosen.append(theme)
    chosen_keys = {t.key for t in chosen}
    breathers = [t for t in BREATHER_THEMES if t.key not in chosen_keys] or list(BREATHER_THEMES)
    if not chosen:
        return [breathers[n % len(breathers)] for n in range(days)]
    themes: list[Theme] = []
    for n in range(1, days + 1):
        if n % 3 == 0:
            themes.append(breathers[(n // 3 - 1) % len(breathers)])
        else:
            themes.append(chosen[(n - 1 - n // 3) % len(chosen)])
    return themes


def plan_day(n: int, days: int, theme: Theme, visit: int, place: str) -> dict[str, Any]:
    """Day ``n`` of ``days``: its theme and its slots (the theme's ``visit``-th set, 0 or
    1 and then again), the first morning an arrival and the last evening a departure."""
    morning, afternoon, evening = (text.format(place=place) for text in theme.variants[visit % 2])
    if n == 1 and days > 1:
        morning = f"Arrive in {place}, check in and get your bearings around your lodging"
    if n == days and days > 1:
        evening = "Pack and leave in good time for your train or flight home"
    return {
        "day": n,
        "theme": theme.title,
        "theme_key": theme.key,
        "slots": {"morning": morning, "afternoon": afternoon, "evening": evening},
    }


def plan_days(place: str, interests: Sequence[str], days: int) -> list[dict[str, Any]]:
    """Every day of the trip (:func:`plan_day`), each theme's second visit with its
    second set of slots."""
    seen: dict[str, int] = {}
    planned = []
    for n, theme in enumerate(day_themes(interests, days), 1):
        planned.append(plan_day(n, days, theme, seen.get(theme.key, 0), place))
        seen[theme.key] = seen.get(theme.key, 0) + 1
    return planned
