"""A job's own terms (from :func:`jobkit.redaction.sensitive_terms`) found in free text.

Terms are matched as whole words, case-insensitively, in NFC or NFD form or without
accents, with any apostrophe or dash; phone-like terms match in any grouping of their
digits, with or without country code or trunk 0. What replaces a term is chosen by its
shape: ``[EMAIL]``, ``[DOB]``, ``[PHONE]``, ``[ADDRESS]`` (digits, commas or lines) or
``[NAME]``.

A job's terms compile to at most two patterns, cached per ``frozenset``, and each is run
only when a cheap probe (a run of the term every spelling shares, or a phone's last seven
digits) is in the text: a clean line rarely holds one.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from jobkit.redaction.core import ADDRESS, DOB, EMAIL, NAME, PHONE, digits

# Written between the parts of a name ("O'Brien-Smith"), and interchangeable there.
APOSTROPHES: Final = "'\u2019\u02bc\u2018`\u00b4"
DASHES: Final = "-\u2010\u2011\u2012\u2013\u2014"
# Letters that do not decompose but are routinely written in ASCII.
_ASCII_FOLD: Final[Mapping[str, str]] = {
    "ß": "ss", "ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th",
    "\u0131": "i",
}  # fmt: skip
_TERM_END: Final = r"(?![\w@\u0300-\u036f])"
_TERM_START: Final = r"(?<![\w@].)"
_KEEP: Final = r"\[(?:email|phone|card|national_id|iban|ip|address|jwt|token|secret|name|dob)\]"
_PHONE_TERM = re.compile(r"\+?[\d\s().\-/]+")
_DATE_TERM = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")
_EMAIL_TERM = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_TERM_TRIM = re.compile(r"^[^\w+]+|[^\w]+$")


def _is_phone_like(term: str) -> bool:
    return (
        _PHONE_TERM.fullmatch(term) is not None
        # Seven digits is a postcode ("1100-148") as often as a local number.
        and len(digits(term)) >= 8
        and _DATE_TERM.fullmatch(term) is None
    )


def _char_variants(ch: str) -> list[str]:
    """Spellings of a lower-case character: itself, decomposed, unaccented, ASCII-folded."""
    nfd = unicodedata.normalize("NFD", ch)
    variants = {ch, nfd}
    base = "".join(c for c in nfd if not unicodedata.combining(c))
    if base:
        variants.add(base)
    folded = _ASCII_FOLD.get(ch)
    if folded:
        variants.add(folded)
    # Longest first, so a decomposed "e\u0308" is consumed whole rather than as "e".
    return sorted(variants, key=lambda v: (-len(v), v))


def _char_pattern(ch: str) -> str:
    if ch in APOSTROPHES:
        # O'Brien, O\u2019Brien (typographic) and OBrien are the same person.
        return f"[{APOSTROPHES}]?"
    if ch in DASHES:
        return rf"[{DASHES}\s]?"
    if ch.isspace():
        return r"\s+"
    variants = _char_variants(ch)
    if len(variants) == 1:
        return re.escape(ch)
    return "(?:" + "|".join(re.escape(v) for v in variants) + ")"


def _text_alternatives(term: str) -> list[str]:
    low = unicodedata.normalize("NFC", term).lower()
    rest = "".join(_char_pattern(ch) for ch in low[1:])
    # One alternative per spelling of the first character, each led by a literal.
    return [
        re.escape(v[0]) + _TERM_START + re.escape(v[1:]) + rest + _TERM_END
        for v in _char_variants(low[0])
    ]


def _phone_alternatives(term: str) -> list[str]:
    number = digits(term)
    # The number as written, then national forms: the country code (1-3 digits) dropped,
    # with or without a trunk 0. "+44 20 7946 0958" is also "020 7946 0958".
    spellings = [number]
    for cc in (1, 2, 3):
        national = number[cc:]
        if len(national) >= 9:
            spellings += [national, "0" + national]
    sep = r"[\s().\-/]{0,3}"
    alternatives = [r"\+" + _TERM_START + sep + sep.join(number) + _TERM_END]
    for spelling in dict.fromkeys(spellings):
        alternatives.append(spelling[0] + _TERM_START + sep + sep.join(spelling[1:]) + _TERM_END)
    return alternatives


def _probe(term: str) -> str | None:
    """The longest run of the term that every spelling of it contains, lower-cased."""
    runs = re.split(
        "|".join(re.escape(ch) for ch in set(term) if _char_pattern(ch) != re.escape(ch)) or "$^",
        term,
    )
    best = max(runs, key=len)
    return best or None


@dataclass(frozen=True, slots=True)
class TermPass:
    """One compiled pattern over some of a job's terms, and when it is worth running."""

    lowered: re.Pattern[str]  # run on text.lower(): no IGNORECASE, so sre can skip ahead
    anycase: re.Pattern[str]  # for text whose lower() changes its length ("İ")
    # Skip the pass unless text.lower() (or, with on_digits, the text's ASCII digits run
    # together) holds one of these. None: always run.
    probes: tuple[str, ...] | None
    on_digits: bool = False


def _term_pass(
    ranked: list[tuple[int, str]], probes: list[str] | None, *, on_digits: bool = False
) -> TermPass:
    # Longest term first, so "O'Brien-Smith" wins over "Brien" at the same position.
    ranked.sort(key=lambda r: -r[0])
    body = "|".join(dict.fromkeys(alt for _, alt in ranked)) + "|" + _KEEP
    return TermPass(
        re.compile(body),
        re.compile(body, re.IGNORECASE),
        None if probes is None else tuple(dict.fromkeys(probes)),
        on_digits,
    )


@functools.lru_cache(maxsize=256)
def term_passes(terms: frozenset[str]) -> tuple[TermPass, ...]:
    """The passes matching ``terms``: one for phone-like terms, one for the rest."""
    phones: list[tuple[int, str]] = []
    phone_probes: list[str] | None = []
    texts: list[tuple[int, str]] = []
    probes: list[str] | None = []
    for raw in terms:
        term = _TERM_TRIM.sub("", raw.strip())
        if len(term) < 2:
            continue
        if _is_phone_like(term):
            phones += [(len(term), alt) for alt in _phone_alternatives(term)]
            # Every spelling ends in the same seven digits, whatever separates them.
            tail = digits(term)[-7:]
            if phone_probes is not None and tail.isascii():
                phone_probes.append(tail)
            else:
                phone_probes = None
            continue
        texts += [(len(term), alt) for alt in _text_alternatives(term)]
        probe = _probe(unicodedata.normalize("NFC", term).lower())
        if probes is not None and probe is not None:
            probes.append(probe)
        else:
            probes = None
    # Two passes, each skipped unless a probe is present: a clean line rarely holds one.
    passes = []
    if phones:
        passes.append(_term_pass(phones, phone_probes, on_digits=True))
    if texts:
        passes.append(_term_pass(texts, probes))
    return tuple(passes)


def _label_for(found: str) -> str:
    if _EMAIL_TERM.fullmatch(found):
        return EMAIL
    if _DATE_TERM.fullmatch(found):
        return DOB
    if _is_phone_like(found):
        return PHONE
    if any(ch.isdigit() for ch in found) or "," in found or "\n" in found:
        return ADDRESS
    return NAME


_NOT_ASCII_DIGITS: Final = bytes(b for b in range(256) if not 48 <= b <= 57)


def redact_terms(text: str, term_pass: TermPass) -> str:
    """``text`` with every match of ``term_pass`` replaced by a placeholder for its shape."""
    low = text.lower()
    if term_pass.probes is not None:
        # bytes.translate is the cheapest way to drop everything but digits.
        hay = (
            text.encode().translate(None, _NOT_ASCII_DIGITS).decode()
            if term_pass.on_digits
            else low
        )
        if not any(p in hay for p in term_pass.probes):
            return text
    if len(low) == len(text):
        found = term_pass.lowered.finditer(low)
    else:
        found = term_pass.anycase.finditer(text)
    out: list[str] = []
    last = 0
    for m in found:
        start, end = m.span()
        if text[start] == "[":
            continue  # a placeholder: never redacted again
        out += (text[last:start], _label_for(text[start:end]))
        last = end
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)
