"""Numbers that identify a person or an account: IBANs, payment cards, national ids
(US SSN, UK National Insurance number, Spanish DNI/NIE, French INSEE/NIR, Dutch BSN), and
an id-like value after an id label (``SSN:``, ``BSN``, ``passport no.``, ...).

Checksums come from python-stdnum where its check is the one meant here:

* IBAN: ``stdnum.iso7064.mod_97_10``, the ISO 13616 mod-97 check. Not ``stdnum.iban``:
  it also demands each country's BBAN layout and, for BE, ES, ME and NO, the national
  check digits (so a mod-97-valid IBAN with a slip in it would leak), knows one country
  more (HN), and is five times slower. The registry lengths stay here: a country's
  length says where in the text its IBAN ends.
* DNI and NIE: the check letter from ``stdnum.es.dni`` and ``stdnum.es.nie``.
* BSN: the 11-test from ``stdnum.nl.bsn`` (and, as there, all zeros is not a BSN).

These are stdnum's checksum functions (``checksum``, ``calc_check_digit``), not its
``is_valid``: the patterns have already checked the shape, and ``is_valid`` first cleans
the string character by character, which costs ten times the check (2.9 against 0.3 µs a
DNI) on every candidate. The checksum functions read the digits with ``int()``, as the
code they replace did, so they give the same answers, and as fast; only a dotted BSN
written in another script's digits is now checked on its digits (the old loop summed
``ord(ch) - 48``, which meant nothing for them).

Our own checks stay where stdnum disagrees, is slower where it matters, or has none:

* Luhn (cards): ``stdnum.luhn`` agrees on every ASCII digit string but takes three times
  as long (3.5 against 1.2 µs), and Luhn is the check the redactor runs most: on every
  13-19 digit number led by 2-6, several times when a card is sought among neighbouring
  digit groups. With it, a line of a dozen 16-digit numbers took 148 µs instead of 90.
* SSN: the area, group and serial rules are in the pattern itself, at no cost.
  ``stdnum.us.ssn`` also rejects three once-advertised numbers, and a space as the
  separator.
* INSEE/NIR: ``stdnum.fr.nir`` does not check the birth month (01-12, 20-42 or 50-99).
* UK National Insurance number: stdnum has no validator for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from stdnum.es import dni, nie
from stdnum.iso7064 import mod_97_10
from stdnum.nl import bsn

from jobkit.redaction.core import (
    CARD,
    IBAN,
    NATIONAL_ID,
    Rule,
    digits,
    has_lower,
)

# --------------------------------------------------------------------------- upper-led

# Lengths from the SWIFT IBAN registry.
_IBAN_LENGTHS: Final[Mapping[str, int]] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27,
    "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip

# IBAN: country, check digits, then 11-30 alphanumerics, at most one space apart.
IBAN_BRANCH: Final = r"(?P<iban>[A-Z]\d\d(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9]))"
# UK National Insurance number; the letters are checked by _nino_valid.
NINO_BRANCH: Final = r"(?P<nino>[A-Z] ?\d\d ?\d\d ?\d\d ?[A-D](?!\w))"
# Spanish NIE: X/Y/Z, seven digits, check letter.
NIE_BRANCH: Final = r"(?P<nie>(?<=[XYZ])-?\d{7}-?[A-Z](?!\w))"


def iban_sub(m: re.Match[str]) -> str:
    """The IBAN at the start of the match, if its country, length and mod 97 say so."""
    raw = m[0]
    # The country fixes the length, so exactly one prefix can be the IBAN; anything after
    # it ("... 32 EUR") is kept. Countries outside the registry are not IBANs.
    expected = _IBAN_LENGTHS.get(raw[:2])
    if expected is None:
        return raw
    seen = 0
    for end, ch in enumerate(raw, 1):
        if ch != " ":
            seen += 1
            if seen == expected:
                compact = raw[:end].replace(" ", "")
                if mod_97_10.checksum(compact[4:] + compact[:4]) == 1:
                    return IBAN + raw[end:]
                break
    return raw


def _nino_valid(raw: str) -> bool:
    # HMRC: no D, F, I, Q, U, V first; no D, F, I, O, Q, U, V second; some pairs never
    # issued. QQ is HMRC's own example prefix, which is what turns up in test data.
    first, second = raw[0], raw[1]
    if first + second == "QQ":
        return True
    if first in "DFIQUV" or second in "DFIOQUV":
        return False
    return first + second not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


def nino_sub(m: re.Match[str]) -> str:
    """A UK National Insurance number, if its letters are ones HMRC issues."""
    return NATIONAL_ID if _nino_valid(m[0]) else m[0]


def nie_sub(m: re.Match[str]) -> str:
    """A Spanish NIE, if its check letter is right."""
    nie_number = m[0].replace("-", "")
    return NATIONAL_ID if nie.calc_check_digit(nie_number[:-1]) == nie_number[-1] else m[0]


# --------------------------------------------------------------------------- digit-led

# The lookahead in front of the id, phone and card branches of the digit-led scanner:
# 8+ digits, so a short number ("attempt=2", "1500 ms") fails once instead of once per
# branch.
EIGHT_DIGITS: Final = r"(?=(?:[ .-]?[\dAB]){7})"

# US SSN 123-45-6789 or 123 45 6789: never area 000, 666 or 9xx, group 00, serial 0000.
SSN_BRANCH: Final = (
    r"(?P<ssn>(?<!9)(?!(?<=0)00)(?!(?<=6)66)\d\d(?P<ssn_sep>[- ])(?!00)\d\d(?P=ssn_sep)"
    r"(?!0000)\d{4}(?![\w-]))"
)
# Dutch BSN in its dotted form 1112.22.333 (11-test in bsn_sub).
BSN_BRANCH: Final = r"(?P<bsn>\d{3}\.\d\d\.\d{3}(?!\w|\.\d))"
# French INSEE/NIR: sex, year, month, department (2A/2B: Corsica), commune, order, key.
INSEE_BRANCH: Final = (
    r"(?P<insee>(?<=[12]) ?\d\d ?\d\d ?(?:\d\d|2[AB]) ?\d{3} ?\d{3} ?\d\d(?![\w-]))"
)
# Spanish DNI: eight digits and a check letter.
DNI_BRANCH: Final = r"(?P<dni>\d{7}-?[A-Z](?!\w))"
CARD_BRANCH: Final = r"(?P<card>(?:[ -]?\d){12,18}(?![\w]|[.-]\d))"


def ssn_sub(_m: re.Match[str]) -> str:
    """A US SSN: the pattern has already checked its parts."""
    return NATIONAL_ID


def bsn_sub(m: re.Match[str]) -> str:
    """A Dutch BSN, if it passes the 11-test."""
    number = digits(m[0])
    return NATIONAL_ID if bsn.checksum(number) == 0 and int(number) > 0 else m[0]


def _insee_valid(raw: str) -> bool:
    s = raw.replace(" ", "")
    month = int(s[3:5])
    if not (1 <= month <= 12 or month >= 20):  # 20-42 and 50-99: unknown birth month
        return False
    # Corsica's departments 2A and 2B count as 19 and 18 for the key.
    body = s[:13].replace("2A", "19", 1).replace("2B", "18", 1)
    return 97 - int(body) % 97 == int(s[13:])


def insee_sub(m: re.Match[str]) -> str:
    """A French INSEE/NIR, if its birth month is one and its mod-97 key is right."""
    return NATIONAL_ID if _insee_valid(m[0]) else m[0]


def dni_sub(m: re.Match[str]) -> str:
    """A Spanish DNI, if its check letter is right."""
    dni_number = m[0].replace("-", "")
    return NATIONAL_ID if dni.calc_check_digit(dni_number[:-1]) == dni_number[-1] else m[0]


_DIGIT_RUN = re.compile(r"\d+")


def _luhn_valid(number: str) -> bool:
    # Our own rather than stdnum.luhn: see the module's docstring.
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_valid(number: str) -> bool:
    # First digit 2-6: Mastercard 2-series, Amex/Diners/JCB, Visa, Mastercard, Discover
    # and Maestro. Epoch timestamps (1...) and zero-padded ids (0...) are not cards.
    return 13 <= len(number) <= 19 and number[0] in "23456" and _luhn_valid(number)


def card_sub(m: re.Match[str]) -> str:
    """A card number: the whole match, or the longest run of its digit groups that is one."""
    raw = m[0]
    if _card_valid(digits(raw)):
        return CARD
    # A card next to other numbers ("4111 1111 1111 1111 12"): try runs of whole groups
    # holding 13-19 digits, longest first.
    spans = [(g.start(), g.end()) for g in _DIGIT_RUN.finditer(raw)]
    windows: list[tuple[int, int, int]] = []
    for i, (start, _) in enumerate(spans):
        count = 0
        for j in range(i, len(spans)):
            count += spans[j][1] - spans[j][0]
            if count > 19:
                break
            if count >= 13:
                windows.append((count, start, spans[j][1]))
    for _, start, end in sorted(windows, reverse=True):
        if _card_valid(digits(raw[start:end])):
            return raw[:start] + CARD + raw[end:]
    return raw


# --------------------------------------------------------------------------- id labels

# A value after an id label is an id, whatever its checksum, if it has 4+ digits.
_ID_LABEL = re.compile(
    r"(?P<key>(?<![\w-])(?i:ssn|social[ _-]security(?:[ _-](?:number|no))?|bsn"
    r"|burgerservicenummer|sofi-?nummer|passport(?:[ _-](?:number|no))?"
    r"|national[ _-](?:id|insurance)(?:[ _-](?:number|no))?|ni[ _-]number|nino|nir|insee"
    r"|tax[ _-]?id|nif|nie|dni|steuer[ _-]?id|personnummer|pesel|codice[ _-]fiscale)\.?)"
    r"(?P<sep>[\"']?[ \t]*[:#=]?[ \t]*[\"']?)"
    r"(?P<val>(?!\[)[A-Z0-9](?:[A-Z0-9]|[.-](?=[A-Z0-9])|[ ](?=\d|[A-D](?!\w))){4,24})"
)


def _id_label_sub(m: re.Match[str]) -> str:
    if sum(ch.isdigit() for ch in m["val"]) < 4:
        return m[0]
    return f"{m['key']}{m['sep']}{NATIONAL_ID}"


ID_LABEL_RULE: Final = Rule(
    _ID_LABEL, _id_label_sub,
    has_lower("ssn", "bsn", "nummer", "passport", "national", "ni number", "ni_number",
              "ni-number", "nino", "nir", "insee", "tax", "nif", "nie", "dni", "steuer",
              "pesel", "codice", "social"),
)  # fmt: skip
