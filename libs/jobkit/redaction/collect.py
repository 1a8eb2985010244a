"""The strings in a job's input that identify the person behind it.

:func:`sensitive_terms` walks the job's input once, when the job is created or a step
starts; :func:`jobkit.redaction.redact` then finds those terms in every log line of the
job (:mod:`jobkit.redaction.terms`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from jobkit.redaction.terms import APOSTROPHES, DASHES

# Keys naming a person's data wherever they appear.
_PERSONAL_KEYS: Final = frozenset(
    {
        # names
        "full_name", "fullname", "first_name", "firstname", "given_name", "middle_name",
        "last_name", "lastname", "family_name", "surname", "maiden_name", "preferred_name",
        # contact
        "email", "email_address", "emails", "personal_email", "work_email", "phone",
        "phone_number", "phones", "mobile", "mobile_number", "mobile_phone", "cell",
        "cellphone", "telephone", "tel", "home_phone", "work_phone", "fax", "whatsapp",
        # address
        "street", "street_address", "address_line1", "address_line_1", "address_line2",
        "address_line_2", "address1", "address2", "home_address", "postal_address",
        "mailing_address", "postcode", "postal_code", "post_code", "zip", "zip_code",
        "zipcode",
        # identity
        "date_of_birth", "dob", "birth_date", "birthdate", "birthday", "ssn",
        "social_security_number", "national_id", "national_insurance_number", "nino",
        "passport", "passport_number", "tax_id", "nif", "nie", "dni", "bsn", "iban",
        "linkedin", "linkedin_url",
    }
)  # fmt: skip
# Keys that are personal only on a person: "name" of a skill, "location" of a job posting
# and "url" of a company are not.
_CONTEXT_KEYS: Final = frozenset(
    {
        "name", "display_name", "nickname", "username", "user_name", "handle", "location",
        "address", "city", "town", "website", "url", "homepage", "portfolio", "github",
        "twitter",
    }
)  # fmt: skip
# Mappings under these keys describe a person.
_PERSON_KEYS: Final = frozenset(
    {
        "resume", "cv", "candidate", "applicant", "person", "profile", "profiles",
        "basics", "contact", "contacts", "contact_info", "contact_information",
        "contact_details", "personal", "personal_info", "personal_information",
        "personal_details", "references", "referees", "emergency_contact", "next_of_kin",
        "recruiter", "hiring_manager",
    }
)  # fmt: skip
# Mappings holding any of these are a person (a reference, a contact) wherever they are.
_PERSON_MARKERS: Final = frozenset(
    {"email", "email_address", "phone", "phone_number", "mobile", "first_name", "last_name",
     "full_name", "given_name", "family_name", "surname"}
)  # fmt: skip
_NAME_KEYS: Final = frozenset(
    {"name", "display_name", "full_name", "fullname", "first_name", "firstname",
     "given_name", "middle_name", "last_name", "lastname", "family_name", "surname",
     "maiden_name", "preferred_name", "nickname"}
)  # fmt: skip
_EMAIL_KEYS: Final = frozenset({"email", "email_address", "emails", "personal_email", "work_email"})
_PLACE_KEYS: Final = frozenset(
    {"location", "address", "street", "street_address", "home_address", "postal_address",
     "mailing_address", "address_line1", "address_line_1", "address1"}
)  # fmt: skip
# Honorifics, suffixes and particles say nothing about who someone is, and as words on
# their own they would redact half the log.
_TITLES: Final = frozenset(
    {"mr", "mrs", "ms", "mx", "miss", "dr", "prof", "sir", "dame", "jr", "sr", "ii", "iii",
     "iv", "phd", "md", "mba", "msc", "bsc", "esq"}
)  # fmt: skip
_NAME_NOISE: Final = _TITLES | frozenset(
    {"von", "van", "der", "den", "de", "del", "della", "da", "das", "dos", "du", "la", "le",
     "di", "bin", "ibn", "al", "el", "ben", "ter", "ten", "het", "los", "las", "y"}
)  # fmt: skip
# Role mailboxes name a team, not a person.
_ROLE_MAILBOXES: Final = frozenset(
    {"info", "jobs", "careers", "contact", "hello", "admin", "recruiting", "noreply",
     "no-reply", "support", "team", "office", "mail", "talent", "hiring"}
)  # fmt: skip
_MIN_TERM: Final = 3
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _norm_key(key: object) -> str:
    return _CAMEL.sub("_", str(key)).strip().lower().replace("-", "_").replace(" ", "_")


def _add(out: set[str], value: str) -> None:
    value = value.strip()
    if len(value) >= _MIN_TERM:
        out.add(value)


def _add_name(out: set[str], value: str) -> None:
    _add(out, value)
    tokens = [t.strip('.()"') for t in re.split(r"[\s,]+", value)]
    # "Dr. Zoë Ann O'Brien-Smith" is written "Zoë Ann O'Brien-Smith" as often as not.
    _add(out, " ".join(t for t in tokens if t and t.lower() not in _TITLES))
    for token in tokens:
        parts = [token, *re.split(rf"[{DASHES}{APOSTROPHES}]", token)]
        for part in parts:
            if part.lower() not in _NAME_NOISE:
                _add(out, part)


def _add_value(out: set[str], key: str, value: str) -> None:
    if key in _NAME_KEYS:
        _add_name(out, value)
    elif key in _EMAIL_KEYS:
        _add(out, value)
        local = value.split("@", 1)[0].split("+", 1)[0].strip()
        if "@" in value and len(local) >= 4 and local.lower() not in _ROLE_MAILBOXES:
            _add(out, local)
    elif key in _PLACE_KEYS:
        _add(out, value)
        # A street line or postcode on its own is still an address; a city on its own is
        # not personal, and would redact a job posting's office too.
        for part in re.split(r"[,\n]", value):
            if any(ch.isdigit() for ch in part):
                _add(out, part)
    else:
        _add(out, value)
        stripped = re.sub(r"^[a-z]+://(?:www\.)?", "", value.strip(), flags=re.I)
        if stripped != value.strip():
            _add(out, stripped.rstrip("/"))


def _collect(out: set[str], key: str, value: Any) -> None:
    if isinstance(value, str):
        _add_value(out, key, value)
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        # A phone number or postcode stored as a number.
        _add(out, str(value))
    elif isinstance(value, Mapping):
        # {"address": {"street": ..., "city": ...}} describes the person's place.
        _walk(out, value, person=True)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(out, key, item)


def _walk(out: set[str], node: Any, *, person: bool) -> None:
    if isinstance(node, Mapping):
        keys = {_norm_key(k): v for k, v in node.items()}
        person = person or not _PERSON_MARKERS.isdisjoint(keys)
        for key, value in keys.items():
            if key in _PERSONAL_KEYS or (person and key in _CONTEXT_KEYS):
                _collect(out, key, value)
            else:
                # Person-ness does not leak into children: a résumé's "experience" items
                # and "skills" are about work, not identity.
                _walk(out, value, person=key in _PERSON_KEYS)
    elif isinstance(node, list | tuple):
        for item in node:
            _walk(out, item, person=person)


def sensitive_terms(doc: Mapping[str, Any]) -> frozenset[str]:
    """Collect the strings in a job's input that identify the person behind it.

    Walks the whole document. Values under personal keys (names, emails, phones, street
    and postal details, date of birth, national ids, LinkedIn) count wherever they are;
    ``name``, ``location``, ``address``, ``city``, ``username`` and personal URLs count only
    on a person: a mapping under ``resume``, ``cv``, ``candidate``, ``contact``,
    ``references``, ``recruiter``, ... or one holding an email, phone or name field. So a
    skill's or a project's ``name`` and a posting's ``location`` are not collected, and
    neither are employers or schools, which are public bodies shared by many people and
    appear in the job posting too.

    Names also yield each part of 3+ characters, split on spaces, hyphens and apostrophes
    ("O'Brien-Smith", "Brien", "Smith"), except honorifics and particles ("Dr", "van");
    emails yield their local part; addresses yield each comma-separated part holding a
    digit. Pass the result to :func:`redact` as ``extra_terms``.
    """
    out: set[str] = set()
    _walk(out, doc, person=False)
    return frozenset(out)
