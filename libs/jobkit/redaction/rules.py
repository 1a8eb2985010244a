"""The rules in the order they run, and :func:`redact`, which runs them.

Most ids, numbers and street lines are found by three combined scanners, one per kind of
first character (a capital letter, a digit, any capital including accented ones), each a
single regex pass whose named branches come from :mod:`~jobkit.redaction.identifiers`,
:mod:`~jobkit.redaction.contacts` and :mod:`~jobkit.redaction.addresses`. One pass with
many branches costs far less than a pass per branch; the name of the branch that matched
picks the check and the placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

from jobkit.redaction import addresses, contacts, identifiers, secrets
from jobkit.redaction.core import ADDRESS, NAME, UPPER, Rule, Sub
from jobkit.redaction.terms import redact_terms, term_passes


def _address(_m: re.Match[str]) -> str:
    return ADDRESS


def _dispatch(subs: Mapping[str, Sub]) -> Sub:
    def sub(m: re.Match[str]) -> str:
        return subs[m.lastgroup or ""](m)

    return sub


# Ids that start with a capital letter.
_UPPER_LED = re.compile(
    r"[A-Z](?<![\w-][A-Z])(?:"
    + "|".join(
        (
            identifiers.IBAN_BRANCH,
            identifiers.NINO_BRANCH,
            identifiers.NIE_BRANCH,
            addresses.POSTCODE_BRANCH,
            addresses.ZIP_BRANCH,
        )
    )
    + ")"
)
_UPPER_LED_SUBS: Final[Mapping[str, Sub]] = {
    "iban": identifiers.iban_sub,
    "nino": identifiers.nino_sub,
    "nie": identifiers.nie_sub,
    "postcode": _address,
    "zip": addresses.zip_sub,
}

# Ids, numbers and street lines that start with a digit not glued to a word, a decimal
# point, a sign or a dash (so UUID groups, order ids and fractions never start one).
_DIGIT_LED = re.compile(
    r"\d(?<![\w.+-]\d)(?:"
    # Ids, phones, cards: 8+ digits.
    + identifiers.EIGHT_DIGITS
    + "(?:"
    + "|".join(
        (
            identifiers.SSN_BRANCH,
            identifiers.BSN_BRANCH,
            identifiers.INSEE_BRANCH,
            identifiers.DNI_BRANCH,
            contacts.PHONE_BRANCH,
            identifiers.CARD_BRANCH,
        )
    )
    + ")|"
    + contacts.IPV4_BRANCH
    + "|"
    + addresses.HOUSE_NUMBER_BRANCHES
    + ")"
)
_DIGIT_LED_SUBS: Final[Mapping[str, Sub]] = {
    "ssn": identifiers.ssn_sub,
    "bsn": identifiers.bsn_sub,
    "insee": identifiers.insee_sub,
    "dni": identifiers.dni_sub,
    "phone": contacts.phone_sub,
    "card": identifiers.card_sub,
    "ipv4": contacts.ipv4_sub,
    "street": _address,
    "rue": _address,
}

# Everything that starts with a capital letter and is not an id: street-first and
# compound-street addresses, and a name after an honorific.
_CAPITAL_LED = re.compile(
    rf"[{UPPER}](?<!\w.)(?:"
    + "|".join(
        (
            addresses.STREET_FIRST_BRANCH,
            addresses.COMPOUND_STREET_BRANCH,
            contacts.HONORIFIC_BRANCH,
        )
    )
    + ")"
)


def _capital_led_sub(m: re.Match[str]) -> str:
    return NAME if m.lastgroup == "honorific" else ADDRESS


RULES: Final[tuple[Rule, ...]] = (
    # Secrets first: a token may hold digits, dots or an @ that a later rule would split.
    *secrets.RULES,
    contacts.EMAIL_RULE,
    contacts.IPV6_RULE,
    # Structured ids before phones, so a grouped IBAN or id is not read as a phone.
    Rule(_UPPER_LED, _dispatch(_UPPER_LED_SUBS)),
    contacts.PHONE_RULE,
    Rule(_DIGIT_LED, _dispatch(_DIGIT_LED_SUBS)),
    Rule(_CAPITAL_LED, _capital_led_sub),
    identifiers.ID_LABEL_RULE,
    contacts.LABELLED_NAME_RULE,
)
"""Every rule :func:`redact` runs, in order."""


def redact(text: str, extra_terms: Iterable[str] = ()) -> str:
    """Replace personal data and secrets in ``text`` with typed placeholders.

    ``extra_terms`` are strings known to identify the person behind the job, usually from
    :func:`~jobkit.redaction.sensitive_terms`. They are matched as whole words,
    case-insensitively, in NFC or NFD form or without accents, with any apostrophe or
    dash; phone-like terms match in any grouping of their digits, with or without country
    code or trunk 0. Pass the same ``frozenset`` on every call for a job: its compiled
    pattern is cached.

    The result is stable: ``redact(redact(x, t), t) == redact(x, t)``.
    """
    if not text:
        return text
    lower = text.lower()
    for rule in RULES:
        if rule.gate is None or rule.gate(text, lower):
            text = rule.pattern.sub(rule.repl, text)
    terms = extra_terms if isinstance(extra_terms, frozenset) else frozenset(extra_terms)
    if terms:
        for term_pass in term_passes(terms):
            text = redact_terms(text, term_pass)
    return text
