"""Private prompts: contact details leave the system as placeholders and come back in the answer.

Before a prompt goes to a model, a :class:`Vault` replaces every contact detail in it with
a numbered placeholder (``[NAME_1]``, ``[EMAIL_1]``, ``[PHONE_1]``, ``[ADDRESS_1]``,
``[URL_1]``, ``[NATIONAL_ID_1]``, ...) and remembers what each stands for; the model's
answer is then unmasked, so the tailored CV or letter has the real details although the
model never saw them. What counts as a detail:

* the person's own values from the job input (``sensitive_terms`` of
  ``jobkit.redaction``: names and their parts, emails, phones, addresses, ids, links), in
  any spelling ``redact`` recognises (accents, phone groupings);
* whatever :func:`jobkit.redaction.redact` detects in free text (other people's emails
  and phones, street addresses, national ids, cards, IBANs, keys);
* links: ``http(s)://`` and ``www.`` URLs and profile paths on the usual hosts.

Placeholders are stable: one value always gets the same placeholder within a vault, and
the job input's own values are numbered up front, so every prompt of a step agrees.
Text that already looks like a placeholder is masked too (as ``[TEXT_n]``), so a
placeholder in a prompt is always one the vault made, and unmasking never turns the
user's own words into someone's email.

Models copy placeholders well but not always exactly: :meth:`Vault.unmask` accepts any
letter case, up to three spaces inside the brackets and a space or dash for the
underscore (``[ email_1 ]``, ``[Email-1]``). It needs the brackets: a bare ``EMAIL_1`` is
left alone, as are placeholders the vault never issued (a model's ``[NAME_9]``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Final

from jobkit.redaction import PLACEHOLDERS, redact, sensitive_terms
from stepkit.providers.base import (
    ChatMessage,
    ChatProvider,
    ChatRequest,
    Completion,
    complete,
)

#: The kinds of placeholder, in the order the job input's own values are numbered.
KINDS: Final = (
    "NAME", "EMAIL", "PHONE", "ADDRESS", "URL", "NATIONAL_ID", "DOB", "IBAN", "CARD", "IP",
    "JWT", "TOKEN", "SECRET", "TEXT",
)  # fmt: skip

# Placeholders as a model may write them back. Bounded, so a streamed placeholder is never
# longer than _MAX_PLACEHOLDER and a chunk boundary can be held back that far at most.
_KIND_ALTERNATION: Final = "|".join(
    kind.replace("_", r"[_ -]?") for kind in sorted(KINDS, key=len, reverse=True)
)
_PLACEHOLDER = re.compile(
    rf"\[ {{0,3}}(?P<kind>{_KIND_ALTERNATION})[_ -]?(?P<n>\d{{1,4}}) {{0,3}}\]", re.IGNORECASE
)
_MAX_PLACEHOLDER: Final = 40

_URL = re.compile(
    r"(?i)(?:\b(?:https?://|www\.)"
    r"|(?<![\w.@-])(?:[\w-]+\.)*(?:linkedin\.com|github\.com|gitlab\.com|bitbucket\.org"
    r"|twitter\.com|x\.com|medium\.com|behance\.net|dribbble\.com|stackoverflow\.com"
    r"|kaggle\.com|orcid\.org)/)"
    r"[^\s<>\"'\[\]]+"
)
_URL_TRAILING: Final = ".,;:!?)'\""

# Redaction's placeholders, to split its output into kept text and redacted values.
_REDACTED = re.compile("|".join(re.escape(p) for p in sorted(PLACEHOLDERS, key=len, reverse=True)))

# Job-input keys (normalised) whose values are of a known kind; a term found under none of
# them is classified by its shape.
_KEY_KINDS: Final[Mapping[str, str]] = {
    **dict.fromkeys(
        ("name", "full_name", "fullname", "first_name", "firstname", "given_name",
         "middle_name", "last_name", "lastname", "family_name", "surname", "maiden_name",
         "preferred_name", "display_name", "nickname", "username", "user_name", "handle"),
        "NAME",
    ),
    **dict.fromkeys(
        ("email", "email_address", "emails", "personal_email", "work_email"), "EMAIL"
    ),
    **dict.fromkeys(
        ("phone", "phone_number", "phones", "mobile", "mobile_number", "mobile_phone", "cell",
         "cellphone", "telephone", "tel", "home_phone", "work_phone", "fax", "whatsapp"),
        "PHONE",
    ),
    **dict.fromkeys(
        ("location", "address", "street", "street_address", "address_line1",
         "address_line_1", "address_line2", "address_line_2", "address1", "address2",
         "home_address", "postal_address", "mailing_address", "postcode", "postal_code",
         "post_code", "zip", "zip_code", "zipcode", "city", "town"),
        "ADDRESS",
    ),
    **dict.fromkeys(
        ("linkedin", "linkedin_url", "website", "url", "homepage", "portfolio", "github",
         "twitter"),
        "URL",
    ),
    **dict.fromkeys(
        ("ssn", "social_security_number", "national_id", "national_insurance_number", "nino",
         "passport", "passport_number", "tax_id", "nif", "nie", "dni", "bsn"),
        "NATIONAL_ID",
    ),
    **dict.fromkeys(("date_of_birth", "dob", "birth_date", "birthdate", "birthday"), "DOB"),
    "iban": "IBAN",
}  # fmt: skip
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_URL_SHAPE = re.compile(r"(?i)^(?:[a-z][a-z0-9+.-]*://|www\.)|^[\w-]+(?:\.[\w-]+)+/")
_PHONE_SHAPE = re.compile(r"\+?[\d\s().\-/]{7,}")
_DATE_SHAPE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")


def _norm_key(key: object) -> str:
    return _CAMEL.sub("_", str(key)).strip().lower().replace("-", "_").replace(" ", "_")


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


def _known_values(doc: object, out: dict[str, str]) -> None:
    """``out[folded value] = kind`` for every string under a key of known kind."""
    if isinstance(doc, Mapping):
        for key, value in doc.items():
            kind = _KEY_KINDS.get(_norm_key(key))
            if kind is not None and isinstance(value, str | int) and not isinstance(value, bool):
                out.setdefault(_fold(" ".join(str(value).split())), kind)
            elif kind is not None and isinstance(value, list | tuple):
                for item in value:
                    if isinstance(item, str):
                        out.setdefault(_fold(" ".join(item.split())), kind)
            else:
                _known_values(value, out)
    elif isinstance(doc, list | tuple):
        for item in doc:
            _known_values(item, out)


def _kind_by_shape(term: str) -> str:
    digits = sum(ch.isdigit() for ch in term)
    if _EMAIL_SHAPE.fullmatch(term):
        return "EMAIL"
    if _URL_SHAPE.search(term):
        return "URL"
    if _DATE_SHAPE.fullmatch(term):
        return "DOB"
    if digits >= 7 and _PHONE_SHAPE.fullmatch(term):
        return "PHONE"
    if digits or "," in term or "\n" in term:
        return "ADDRESS"
    return "NAME"


def _term_kinds(doc: Mapping[str, object]) -> dict[str, str]:
    """Each of the job input's sensitive terms with its kind: the kind of the field it
    came from (a name part is a NAME, a street line of an address an ADDRESS), else its
    shape."""
    known: dict[str, str] = {}
    _known_values(doc, known)
    # Whole values before parts, in the order of KINDS: "Dana" in both "Dana Okafor" and
    # "dana@example.com" is a NAME.
    by_kind = sorted(known.items(), key=lambda item: KINDS.index(item[1]))
    kinds: dict[str, str] = {}
    seen: set[str] = set()
    # One spelling per value: prompts are built from whitespace-collapsed text, and a
    # value found in another case gets its own placeholder as it is written.
    for term in sorted({" ".join(t.split()) for t in sensitive_terms(doc)}):
        folded = _fold(term)
        if folded in seen:
            continue
        seen.add(folded)
        kind = known.get(folded) or next((k for value, k in by_kind if folded in value), None)
        if kind == "EMAIL" and not _EMAIL_SHAPE.fullmatch(term):
            kind = "NAME"  # an email's local part on its own is a handle, not an address
        kinds[term] = kind or _kind_by_shape(term)
    # Numbered kind by kind, whole values before their parts, longest first: the full name
    # is [NAME_1] whatever else the input holds.
    order = sorted(kinds, key=lambda t: (KINDS.index(kinds[t]), _fold(t) not in known, -len(t), t))
    return {term: kinds[term] for term in order}


class Vault:
    """Masks one job's contact details in prompts and restores them in answers.

    Build it with :meth:`for_input` from the job's input. Values are never shown by
    ``repr`` or anywhere else: a vault is as private as the input it came from.
    """

    def __init__(self, terms: Mapping[str, str] | None = None) -> None:
        """``terms`` maps known sensitive values to their kind (see :data:`KINDS`); they
        are numbered at once, in the order given, so every prompt agrees on them."""
        self._terms = dict(terms or {})
        self._extra_terms = frozenset(self._terms)
        self._folded_kinds = {_fold(value): kind for value, kind in self._terms.items()}
        self._by_value: dict[tuple[str, str], str] = {}
        self._by_key: dict[tuple[str, int], str] = {}
        self._counts: dict[str, int] = {}
        for value, kind in self._terms.items():
            self._placeholder(kind, value)

    @classmethod
    def for_input(cls, doc: Mapping[str, object]) -> Vault:
        """A vault for a job whose input is ``doc`` (the résumé's name, email, phone,
        location, links, ids, and every other value ``sensitive_terms`` finds)."""
        return cls(_term_kinds(doc))

    def __repr__(self) -> str:
        return f"Vault(placeholders={len(self._by_key)})"

    def __len__(self) -> int:
        return len(self._by_key)

    def _placeholder(self, kind: str, value: str) -> str:
        key = (kind, value)
        found = self._by_value.get(key)
        if found is None:
            n = self._counts.get(kind, 0) + 1
            self._counts[kind] = n
            self._by_key[(kind, n)] = value
            found = self._by_value[key] = f"[{kind}_{n}]"
        return found

    def mask(self, text: str) -> str:
        """``text`` with every contact detail replaced by its placeholder."""
        out: list[str] = []
        last = 0
        # Text that already looks like a placeholder is masked first, so that every
        # placeholder in the result is one this vault issued.
        for m in _PLACEHOLDER.finditer(text):
            out += (self._mask_links(text[last : m.start()]), self._placeholder("TEXT", m[0]))
            last = m.end()
        out.append(self._mask_links(text[last:]))
        return self._sweep("".join(out))

    def _mask_links(self, text: str) -> str:
        out: list[str] = []
        last = 0
        for m in _URL.finditer(text):
            url = m[0].rstrip(_URL_TRAILING)
            if "(" in url and m[0][len(url) : len(url) + 1] == ")":
                url += ")"  # a Wikipedia-style link keeps its closing parenthesis
            out += (self._mask_details(text[last : m.start()]), self._placeholder("URL", url))
            last = m.start() + len(url)
        out.append(self._mask_details(text[last:]))
        return "".join(out)

    def _mask_details(self, text: str) -> str:
        redacted = redact(text, self._extra_terms) if text else text
        if redacted == text:
            return text
        pieces = _REDACTED.split(redacted)
        labels = _REDACTED.findall(redacted)
        # redact keeps the text around what it replaces, so the pieces are the original's
        # in order and the gaps between them are the values. Adjacent placeholders (an
        # empty piece between) are one value.
        groups: list[str] = []
        kept: list[str] = [pieces[0]]
        for label, piece in zip(labels, pieces[1:], strict=True):
            if not groups or kept[-1]:
                groups.append(label)
                kept.append(piece)
            else:
                kept[-1] = piece
        values = self._align(text, kept)
        if values is None:  # pragma: no cover - redact only replaces, so this cannot fail
            return redacted
        out = [kept[0]]
        for index, label in enumerate(groups):
            value = values[index]
            kind = self._folded_kinds.get(_fold(value)) or label.strip("[]")
            out += (self._placeholder(kind, value), kept[index + 1])
        return "".join(out)

    def _align(self, text: str, kept: list[str]) -> list[str] | None:
        """The values between the ``kept`` pieces of ``text``: the first alignment (shortest
        values first) in which every value is wholly redacted on its own, else the first
        alignment at all. Either way every character outside the kept pieces is in a value;
        the check only decides where one value ends and the next begins ("Zoë Ann" and
        "O'Brien" are two values to the pattern, but "[NAME] [NAME]" to redact)."""
        if len(kept) == 2:  # one value: there is only one way
            end = len(text) - len(kept[1])
            return [text[len(kept[0]) : end]] if end > len(kept[0]) else None
        failed: set[tuple[int, int]] = set()

        def whole(value: str) -> bool:
            return not _REDACTED.sub("", redact(value, self._extra_terms))

        def search(index: int, start: int, checked: bool) -> list[str] | None:
            if (index, start) in failed:
                return None
            after = kept[index + 1]
            if index + 2 == len(kept):
                end = len(text) - len(after)
                value = text[start:end]
                if end > start and text.endswith(after) and (not checked or whole(value)):
                    return [value]
                failed.add((index, start))
                return None
            end = text.find(after, start + 1)
            while end != -1:
                value = text[start:end]
                if not checked or whole(value):
                    rest = search(index + 1, end + len(after), checked)
                    if rest is not None:
                        return [value, *rest]
                end = text.find(after, end + 1)
            failed.add((index, start))
            return None

        if not text.startswith(kept[0]):
            return None
        found = search(0, len(kept[0]), checked=True)
        if found is None:
            failed.clear()
            found = search(0, len(kept[0]), checked=False)
        return found

    def _sweep(self, text: str) -> str:
        # Belt and braces: a known email, phone, link, id or address that slipped past the
        # word-boundary matching (glued to other text) is replaced wherever it appears.
        for value, kind in self._terms.items():
            if kind == "NAME" or len(value) < 5:
                continue
            folded = _fold(value)
            if folded not in _fold(text):
                continue
            parts = re.split(f"({re.escape(value)})", text, flags=re.IGNORECASE)
            text = "".join(
                part if i % 2 == 0 else self._placeholder(kind, part)
                for i, part in enumerate(parts)
            )
        return text

    def unmask(self, text: str) -> str:
        """``text`` with the vault's placeholders, however the model cased or spaced them,
        replaced by the values they stand for. Anything else is left as it is."""
        return _PLACEHOLDER.sub(self._restore, text)

    def _restore(self, m: re.Match[str]) -> str:
        kind = re.sub(r"[_ -]", "", m["kind"]).upper()
        kind = next((k for k in KINDS if k.replace("_", "") == kind), kind)
        return self._by_key.get((kind, int(m["n"])), m[0])

    def unmasker(self) -> Unmasker:
        """A streaming :meth:`unmask` for an answer that arrives in chunks."""
        return Unmasker(self)

    def mask_messages(self, messages: Iterable[ChatMessage]) -> tuple[ChatMessage, ...]:
        """Every message's content masked."""
        return tuple(ChatMessage(m.role, self.mask(m.content)) for m in messages)


class Unmasker:
    """Unmasks a streamed answer chunk by chunk. A placeholder may be split across chunks
    (``"[EMA"``, ``"IL_1]"``): the tail that could still become one is held back until
    the next chunk or :meth:`flush`. What it returns, joined, is exactly ``unmask`` of the
    whole answer."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self._pending = ""

    def feed(self, chunk: str) -> str:
        """The unmasked text that ``chunk`` completes (possibly ``""``)."""
        text = self._pending + chunk
        cut = len(text)
        bracket = text.rfind("[")
        if bracket != -1 and "]" not in text[bracket:] and len(text) - bracket < _MAX_PLACEHOLDER:
            cut = bracket
        self._pending = text[cut:]
        return self._vault.unmask(text[:cut])

    def flush(self) -> str:
        """The rest, at the end of the answer."""
        text, self._pending = self._pending, ""
        return self._vault.unmask(text)


async def private_complete(
    provider: ChatProvider,
    request: ChatRequest,
    vault: Vault,
    on_chunk: Callable[[str], Awaitable[None]] | None = None,
) -> Completion:
    """:func:`~stepkit.providers.base.complete` with ``request``'s messages
    masked by ``vault`` and the answer (and each chunk ``on_chunk`` sees) unmasked.

    The offline answer is masked too, so the ``local`` provider takes the same path as a
    model and, masking and unmasking being exact inverses, gives its text back unchanged.
    """
    offline = request.offline

    async def masked_offline() -> str:
        return vault.mask(await offline())

    masked = ChatRequest(
        request.prompt_id,
        vault.mask_messages(request.messages),
        masked_offline,
        max_tokens=request.max_tokens,
        temperature=request.temperature,
    )
    unmasker = vault.unmasker()

    async def streamed(chunk: str) -> None:
        text = unmasker.feed(chunk)
        if text and on_chunk is not None:
            await on_chunk(text)

    done = await complete(provider, masked, None if on_chunk is None else streamed)
    rest = unmasker.flush()
    if rest and on_chunk is not None:
        await on_chunk(rest)
    return Completion(vault.unmask(done.text), done.usage)
