"""jobkit.redaction as a package: its public API, its scanners' dispatch, and its checksums
against python-stdnum's validators on generated numbers."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping

import pytest
from stdnum import luhn
from stdnum.es import dni, nie
from stdnum.iso7064 import mod_97_10
from stdnum.nl import bsn

import jobkit.redaction
from jobkit.redaction import redact, rules

_RNG_SEED = 20240611
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def test_public_api_is_unchanged() -> None:
    assert sorted(jobkit.redaction.__all__) == sorted(
        ["ADDRESS", "CARD", "DOB", "EMAIL", "IBAN", "IP", "JWT", "NAME", "NATIONAL_ID",
         "PHONE", "PLACEHOLDERS", "SECRET", "TOKEN", "redact", "sensitive_terms"]
    )  # fmt: skip
    assert {getattr(jobkit.redaction, n) for n in jobkit.redaction.__all__ if n.isupper()} == (
        jobkit.redaction.PLACEHOLDERS | {jobkit.redaction.PLACEHOLDERS}
    )


@pytest.mark.parametrize(
    ("scanner", "subs"),
    [
        pytest.param(rules._UPPER_LED, rules._UPPER_LED_SUBS, id="upper-led"),
        pytest.param(rules._DIGIT_LED, rules._DIGIT_LED_SUBS, id="digit-led"),
    ],
)
def test_every_scanner_branch_has_a_handler(
    scanner: re.Pattern[str], subs: Mapping[str, object]
) -> None:
    # A branch without a handler would raise KeyError inside the logging processor.
    inner = {"ssn_sep", "psep", "nsep"}  # separators back-referenced inside a branch
    assert set(scanner.groupindex) - inner == set(subs)


def test_dni_agrees_with_stdnum() -> None:
    rng = random.Random(_RNG_SEED)
    for _ in range(2000):
        number = _digits(rng, 8) + rng.choice(_DNI_LETTERS)
        expected = "ref [NATIONAL_ID] ok" if dni.is_valid(number) else f"ref {number} ok"
        assert redact(f"ref {number} ok") == expected


def test_nie_agrees_with_stdnum() -> None:
    rng = random.Random(_RNG_SEED)
    for _ in range(2000):
        number = rng.choice("XYZ") + _digits(rng, 7) + rng.choice(_DNI_LETTERS)
        expected = "ref [NATIONAL_ID] ok" if nie.is_valid(number) else f"ref {number} ok"
        assert redact(f"ref {number} ok") == expected


def test_dotted_bsn_agrees_with_stdnum() -> None:
    rng = random.Random(_RNG_SEED)
    for _ in range(2000):
        number = _digits(rng, 9)
        dotted = f"{number[:4]}.{number[4:6]}.{number[6:]}"
        expected = "ref [NATIONAL_ID] ok" if bsn.is_valid(number) else f"ref {dotted} ok"
        assert redact(f"ref {dotted} ok") == expected
    assert redact("ref 0000.00.000 ok") == "ref 0000.00.000 ok"


def test_iban_agrees_with_mod_97() -> None:
    rng = random.Random(_RNG_SEED)
    for _ in range(2000):
        bban = _digits(rng, 18)  # DE: 22 characters
        check = mod_97_10.calc_check_digits(bban + "DE")
        if rng.random() < 0.5:
            check = _digits(rng, 2)
        iban = f"DE{check}{bban}"
        valid = mod_97_10.is_valid(bban + "DE" + check)
        assert redact(f"pay {iban} now") == ("pay [IBAN] now" if valid else f"pay {iban} now")


def test_card_luhn_agrees_with_stdnum() -> None:
    # Our own Luhn, kept for speed, must mean what stdnum's does. (Not led by 2: fifteen
    # digits led by 1 or 2 are read as an INSEE number, and checked as one.)
    rng = random.Random(_RNG_SEED)
    for _ in range(2000):
        number = rng.choice("3456") + _digits(rng, rng.randint(12, 18))
        expected = "card [CARD] ok" if luhn.is_valid(number) else f"card {number} ok"
        assert redact(f"card {number} ok") == expected


_ARABIC_INDIC = str.maketrans("0123456789", "".join(map(chr, range(0x0660, 0x066A))))
_FULLWIDTH = str.maketrans("0123456789", "".join(map(chr, range(0xFF10, 0xFF1A))))


@pytest.mark.parametrize(
    ("number", "script", "redacted"),
    [
        pytest.param("12345678Z", _ARABIC_INDIC, True, id="dni-arabic-indic"),
        pytest.param("X1234567L", _ARABIC_INDIC, True, id="nie-arabic-indic"),
        pytest.param("X1234567A", _ARABIC_INDIC, False, id="nie-arabic-indic-bad"),
        pytest.param("1112.22.333", _FULLWIDTH, True, id="bsn-fullwidth"),
        pytest.param("1112.22.334", _FULLWIDTH, False, id="bsn-fullwidth-bad"),
    ],
)
def test_checksums_read_any_scripts_digits(
    number: str, script: dict[int, str], redacted: bool
) -> None:
    # \d and int() read any script's digits; the checks read them the same way.
    written = number.translate(script)
    expected = "ref [NATIONAL_ID] ok" if redacted else f"ref {written} ok"
    assert redact(f"ref {written} ok") == expected
