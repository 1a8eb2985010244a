"""Street addresses and postcodes.

Street lines (``221B Baker Street``, ``1600 Amphitheatre Pkwy``, ``Calle Mayor 5``,
``Hauptstraße 12``, ``10 rue de Rivoli``) are taken together with a unit and a following
line or comma part holding a postcode; UK postcodes and a US state + ZIP after a comma
are taken on their own. Street words must be capitalised: "3 files on the main road" is
prose.

Everything here is a branch of one of the combined scanners that
:mod:`jobkit.redaction.rules` builds (one regex pass per kind of first character); each
fragment starts after the first character, which the scanner has already consumed.
"""

from __future__ import annotations

import re
from typing import Final

from jobkit.redaction.core import ADDRESS, UPPER, after_first

_WORD: Final = rf"[{UPPER}][\w'\u2019.-]*"
_STREET_TYPES: Final = (
    "street|st|road|rd|avenue|ave|av|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl"
    "|square|sq|terrace|terr|way|parkway|pkwy|highway|hwy|close|crescent|cres|gardens|gdns"
    "|grove|row|mews|walk|hill|circle|cir|trail|trl|alley|plaza|loop|expressway|expy"
    "|freeway|fwy|route|rte|pike|green|parade|esplanade|embankment|quay|wharf"
)
_US_STATES: Final = frozenset(
    {
        "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN",
        "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV",
        "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN",
        "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "DC", "PR",
    }
)  # fmt: skip
_US_STATE_RE: Final = "|".join(sorted(_US_STATES))
_POSTCODE: Final = (
    r"(?:\[ADDRESS\]"  # already redacted by the postcode rule, which runs first
    r"|(?:[A-Z]{1,2}\d[A-Z\d]?|GIR) ?\d[A-Z]{2}(?![\w-])"
    rf"|(?:{_US_STATE_RE})[ \t]+\d{{5}}(?:-\d{{4}})?(?![\w-])"
    # Continental, postcode first: "28013 Madrid", "1012 AB Amsterdam".
    rf"|\d{{4,5}}(?:[ \t]?[A-Z]{{2}})?[ \t]+{_WORD}(?:[ \t]+{_WORD}){{0,2}})"
)
# What may follow a street line: a unit, then a line (or comma part) holding a postcode,
# optionally after a city. A following line without a postcode is not swallowed.
_TAIL: Final = (
    r"(?:,?[ \t]+(?i:apt|apartment|suite|ste|unit|flat|floor|fl|room|rm)\.?[ \t]*#?[\w-]+"
    r"|[ \t]*,?[ \t]*\#[ \t]?[\w-]+)?"
    rf"(?:(?:,[ \t]*|[ \t]*\r?\n[ \t]*)(?:{_WORD}(?:[ \t]+{_WORD}){{0,3}}(?:,[ \t]*|[ \t]+))?"
    rf"{_POSTCODE})?"
)
_PARTICLES: Final = r"(?:de|del|de la|de las|de los|la|las|los|da|das|do|dos|di|della|du|des)"

_STREET_FIRST: Final = (
    "Calle", "C/", "Avenida", "Avda.", "Av.", "Paseo", "Plaza", "Pza.", "Camino", "Carrer",
    "Rua", "Travessa", "Largo", "Praça", "Via", "Viale", "Piazza", "Corso", "Vicolo", "Ulica",
)  # fmt: skip
_STREET_SUFFIXES: Final = (
    "straße", "strasse", "str.", "weg", "gasse", "allee", "platz", "damm", "ufer", "chaussee",
    "straat", "laan", "gracht", "plein", "kade", "singel", "steeg",
)  # fmt: skip

# --------------------------------------------------------------------------- upper-led

# UK postcode (a handful of houses). The space is required on its own: "AB12CD" is more
# often an id than a postcode.
POSTCODE_BRANCH: Final = r"(?P<postcode>[A-Z]?\d[A-Z\d]? \d[A-Z]{2}(?![\w-]))"
# US state + ZIP, only after a comma or at a line start: "Mountain View, CA 94043".
ZIP_BRANCH: Final = r"(?P<zip>(?:(?<=[,\n].)|(?<=[,\n][ \t].))[A-Z][ \t]+\d{5}(?:-\d{4})?(?![\w-]))"


def zip_sub(m: re.Match[str]) -> str:
    """A US state and ZIP code, if the two letters are a state."""
    raw = m[0]
    return ADDRESS if raw[:2] in _US_STATES else raw


# --------------------------------------------------------------------------- digit-led

# Street lines: a house number, then a space and a letter.
HOUSE_NUMBER_BRANCHES: Final = (
    r"(?=[\dA-Za-z/-]*+,?[ \t]+[^\W\d_])(?:"
    # "221B Baker Street", "1600 Amphitheatre Pkwy", "10 Downing St.", "12-14 High St".
    # Possessive quantifiers: a house number never needs to give digits back, and
    # backtracking into it costs more than all the other branches.
    rf"(?P<street>(?<![:/]\d)\d{{0,4}}+[A-Za-z]?+(?:[-/]\d{{1,5}}+[A-Za-z]?+)?+,?+"
    rf"(?:[ \t]+{_WORD}){{1,4}}?[ \t]+(?i:{_STREET_TYPES})\.?(?!\w){_TAIL})"
    # "10 rue de Rivoli", "5 bis avenue Foch".
    rf"|(?P<rue>\d{{0,3}}+(?:[ \t]?(?:bis|ter))?+,?+[ \t]+"
    r"(?i:rue|avenue|boulevard|bd|place|allée|chemin|impasse|quai|cours)[ \t]+"
    rf"(?:(?i:de la|de l'|du|des|de|la|le|l')[ \t]*)?{_WORD}(?:[ \t-]+{_WORD}){{0,3}}{_TAIL}))"
)

# --------------------------------------------------------------------------- capital-led

# "Calle Mayor 5", "Avenida de la Constitución 12", "Rua Augusta 100", "Via Roma 10".
STREET_FIRST_BRANCH: Final = (
    rf"(?P<street>(?:{after_first(_STREET_FIRST)})[ \t]+(?:{_PARTICLES}[ \t]+)*{_WORD}"
    rf"(?:[ \t]+(?:{_PARTICLES}[ \t]+)*{_WORD}){{0,3}}?,?[ \t]+(?:n[º°o]\.?[ \t]*)?"
    rf"\d{{1,4}}[A-Za-z]?(?!\w){_TAIL})"
)
# "Hauptstraße 12", "Keizersgracht 123", "Berliner Str. 5". The word is read possessively
# and its ending checked behind, instead of a lazy scan for each suffix.
COMPOUND_STREET_BRANCH: Final = (
    r"(?P<compound>[\w.'\u2019-]*+(?:"
    + "|".join(f"(?<={re.escape(x)})" for x in _STREET_SUFFIXES)
    + r"|[ \t]+(?:Straße|Strasse|Str\.|Weg|Gasse|Allee|Platz)(?!\w))"
    rf"[ \t]+\d{{1,4}}[a-zA-Z]?(?!\w){_TAIL})"
)
