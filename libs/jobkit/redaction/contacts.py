"""Ways to reach or name a person: emails, phone numbers, IP addresses, and names after
an honorific or a person-name label.

Some of these are branches of the combined scanners that :mod:`jobkit.redaction.rules`
builds (one regex pass per kind of first character); those fragments start after the
first character, which the scanner has already consumed.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from jobkit.redaction.core import (
    EMAIL,
    IP,
    NAME,
    PHONE,
    UPPER,
    Rule,
    after_first,
    digits,
    has,
    keep_quotes,
)

# --------------------------------------------------------------------------- email, IPv6

_EMAIL = re.compile(
    r"[\w%+-](?<![\w.%+-][\w%+-])[\w.%+'-]*@(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,}(?![\w-])"
)

_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*(?:%[\w.]+)?(?![\w:])")


def _ipv6_sub(m: re.Match[str]) -> str:
    raw = m[0]
    try:
        address = ipaddress.IPv6Address(raw.split("%", 1)[0])
    except ValueError:
        return raw  # a time of day, a MAC address, a C++ scope
    if address.is_loopback or address.is_unspecified:
        return raw
    return IP


EMAIL_RULE: Final = Rule(_EMAIL, EMAIL, has("@"))
# A valid IPv6 address has "::" or seven colons; an ISO timestamp has two.
IPV6_RULE: Final = Rule(_IPV6, _ipv6_sub, lambda text, _low: "::" in text or text.count(":") >= 7)

# --------------------------------------------------------------------------- phones


def phone_sub(m: re.Match[str]) -> str:
    """A phone number, unless it has fewer than 9 digits."""
    # Fewer than 9 digits is a date, a count or an extension, not a reachable number.
    return PHONE if len(digits(m[0])) >= 9 else m[0]


_PHONE_INTL = re.compile(
    # "+44 20 7946 0958", "+1 (415) 555-0100", "+442079460958", "+44 (0)20 ...".
    r"\+(?<![\w+]\+)\d[\d(). -]*\d"
    # "(415) 555-0100", "(020) 7946 0958".
    r"|\((?<![\w)]\()\d{2,5}\)[ .-]?\d[\d .-]*\d"
)
PHONE_RULE: Final = Rule(_PHONE_INTL, phone_sub, has("+", "("))

# Digit-led national numbers, for the digit-led scanner.
PHONE_BRANCH: Final = (
    r"(?P<phone>"
    # Trunk 0 or 00, one consistent separator: "020 7946 0958", "06 12 34 56 78".
    r"(?<=0)(?:0[1-9]\d{0,2}|[1-9]\d{0,3})(?P<psep>[ .-])\d{2,8}(?:(?P=psep)\d{2,8}){0,4}"
    r"(?![\w]|[.-]\d)"
    r"|(?<=0)[1-9]\d{8,9}(?![\w]|[.-]\d)"
    # North American 3-3-4: "415.555.0100", "1-415-555-0100".
    r"|(?:(?<=1)[ .-][2-9]\d\d|(?<=[2-9])\d\d)(?P<nsep>[ .-])[2-9]\d\d(?P=nsep)\d{4}"
    r"(?![\w]|[.-]\d))"
)

# --------------------------------------------------------------------------- IPv4

IPV4_BRANCH: Final = r"(?P<ipv4>\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!\w|\.\w))"

_VERSION_CONTEXT = re.compile(
    r"(?i)(?:version|ver|release|build|rev|firmware|==|>=|<=|~=)[ \t:=]*$"
)


def ipv4_sub(m: re.Match[str]) -> str:
    """An IPv4 address, unless its octets are not octets, it is ours, or it is a version."""
    raw = m[0]
    parts = raw.split(".")
    if any(int(p) > 255 or (len(p) > 1 and p[0] == "0") for p in parts):
        return raw
    # Loopback and "any" are ours, not a person's.
    if raw == "0.0.0.0" or parts[0] == "127":  # noqa: S104 - compared, not bound
        return raw
    # "version 1.2.3.4", "build: 10.0.19045.1": a four-part version, not a host.
    if _VERSION_CONTEXT.search(m.string, max(0, m.start() - 12), m.start()):
        return raw
    return IP


# --------------------------------------------------------------------------- names

_HONORIFICS: Final = ("Mr", "Mrs", "Ms", "Mx", "Miss", "Dr", "Prof")

# "Dr. Jane Doe", "Mrs O'Brien", for the capital-led scanner.
HONORIFIC_BRANCH: Final = (
    rf"(?P<honorific>(?:{after_first(_HONORIFICS)})\.?[ \t]+[{UPPER}][\w'\u2019-]+"
    rf"(?:[ \t]+[{UPPER}][\w'\u2019-]+){{0,2}})"
)

_LABELLED_NAME = re.compile(
    r"(?P<key>(?<![\w-])(?i:(?:full|first|last|given|family|middle|maiden|candidate"
    r"|applicant|contact)[_ -]?name|surname))"
    r"(?P<sep>[\"']?[ \t]*[:=][ \t]*)"
    rf"(?!\[)(?P<val>\"[^\"\n]+\"|'[^'\n]+'|[^\s\"',;&)}}]+(?:[ \t][{UPPER}][\w'\u2019-]*){{0,3}})"
)
LABELLED_NAME_RULE: Final = Rule(
    _LABELLED_NAME,
    lambda m: keep_quotes(m, NAME),
    lambda _text, low: "name" in low
    and any(n in low for n in ("full", "first", "last", "given", "family", "middle",
                               "maiden", "candidate", "applicant", "contact", "sur")),
)  # fmt: skip
