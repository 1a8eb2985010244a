"""Redact personal data and secrets from free text before it reaches a log.

Résumés and job postings are full of personal data, and an exception message or a debug
line can carry any of it. :func:`redact` replaces what it recognises with a typed
placeholder so a log line stays readable (``mail [EMAIL] failed``) without the data:

``[EMAIL]``        addresses, including plus-addressing, subdomains and unicode parts
``[PHONE]``        ``+``-prefixed international numbers (E.164 or grouped, with ``(0)``),
                   a parenthesised area code, trunk-``0``/``00`` national numbers with one
                   consistent separator, North American 3-3-4; always 9+ digits
``[CARD]``         13-19 digits, optionally grouped by spaces or dashes, first digit 2-6 (the
                   card networks) and a passing Luhn checksum
``[NATIONAL_ID]``  US SSN (no 000/666/9xx area, 00 group, 0000 serial), UK National
                   Insurance number (HMRC letter rules), Spanish DNI/NIE (check letter),
                   French INSEE/NIR (mod-97 key), Dutch BSN in its dotted form (11-test), and
                   an id-like value after a label (``SSN:``, ``BSN``, ``passport no.``, ...)
``[IBAN]``         IBANs with or without spaces: registry country, its length, mod 97
``[IP]``           IPv4 and IPv6 addresses, except loopback and unspecified (``0.0.0.0``,
                   ``127.x``, ``::``, ``::1``), which are ours, not a person's
``[ADDRESS]``      street lines (``221B Baker Street``, ``1600 Amphitheatre Pkwy``,
                   ``Calle Mayor 5``, ``Hauptstraße 12``, ``10 rue de Rivoli``) together with
                   a unit and a following line or comma part holding a postcode; UK
                   postcodes; a US state + ZIP after a comma
``[JWT]``          JSON Web Tokens (``eyJ...``)
``[TOKEN]``        ``Bearer``/``Basic`` credentials; API keys of known shapes (OpenAI
                   ``sk-``, Stripe, GitHub ``ghp_``/``github_pat_``, GitLab, Slack, AWS
                   ``AKIA``, Google ``AIza``, npm, Hugging Face); the vendor prefix is kept
``[SECRET]``       ``authorization:`` values, the value of any key ending in password,
                   secret, token, api_key, signature, credentials, session_id, cookie, ...;
                   ``?code=``/``&key=`` query values; ``user:password@`` in URLs; PEM keys
``[NAME]``         a name after an honorific (``Dr. Jane Roe``) or a person-name label
                   (``first_name=Zoë``); all else about a person comes from the job's own
                   :func:`sensitive_terms`, passed to :func:`redact` as ``extra_terms``
``[DOB]``          a date of birth, from the terms only

Precision matters as much as recall: a log that redacts job ids, timestamps and counters
is useless. UUIDs, ISO and ``logging`` timestamps, dates, durations, versions, order ids,
long integers, HTTP statuses, ports, percentages, hashes and ``SNAKE_CASE`` codes survive.
The choices that make that work:

* A number glued to a letter, a dash, a dot or a sign never starts a match, so UUID groups,
  ``ORD-2024-000123``, ``v2.15.1`` and fractions are left alone.
* Bare digit runs are not phones: a phone needs a ``+``, a ``(area)``, a trunk ``0`` or the
  North American 3-3-4 grouping. National numbers without a trunk prefix (Spain's
  ``91 123 45 67``) are left to the terms, which match a phone in any grouping.
* A 16-digit number is a card only if its first digit and Luhn say so; a bare 9-digit
  number is never an SSN or BSN without a label, since the 11-test alone passes one
  counter in eleven.
* Four dotted numbers are an IPv4 address (octets <= 255, no leading zeros) unless glued
  to a ``v`` or after ``version``, ``release``, ``build`` or ``==``; three never are.
* Street words must be capitalised ("3 files on the main road" is prose).
* Placeholders are never matched again, so ``redact(redact(x)) == redact(x)``.

Every pattern is compiled at import and shaped so the regex engine can skip to plausible
first characters; rules keyed on a word are skipped by a substring test when it is absent.
A 200-character clean log line takes about 20 µs.

The package's rooms: :mod:`~jobkit.redaction.core` (placeholders, the rule type),
:mod:`~jobkit.redaction.secrets`, :mod:`~jobkit.redaction.contacts` (emails, phones, IPs,
names), :mod:`~jobkit.redaction.identifiers` (IBANs, cards, national ids; the checksums
from python-stdnum), :mod:`~jobkit.redaction.addresses`, :mod:`~jobkit.redaction.rules`
(their order, and :func:`redact`), :mod:`~jobkit.redaction.terms` (a job's own terms in
text) and :mod:`~jobkit.redaction.collect` (:func:`sensitive_terms`). Import from the
package: the modules are its insides.
"""

from __future__ import annotations

from jobkit.redaction.collect import sensitive_terms
from jobkit.redaction.core import (
    ADDRESS,
    CARD,
    DOB,
    EMAIL,
    IBAN,
    IP,
    JWT,
    NAME,
    NATIONAL_ID,
    PHONE,
    PLACEHOLDERS,
    SECRET,
    TOKEN,
)
from jobkit.redaction.rules import redact

__all__ = [
    "ADDRESS",
    "CARD",
    "DOB",
    "EMAIL",
    "IBAN",
    "IP",
    "JWT",
    "NAME",
    "NATIONAL_ID",
    "PHONE",
    "PLACEHOLDERS",
    "SECRET",
    "TOKEN",
    "redact",
    "sensitive_terms",
]
