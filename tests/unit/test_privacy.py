"""Private prompts: masking contact details on the way to a model, unmasking the answer."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from jobtypes.cv_tailoring import steps as cv_steps
from jobtypes.cv_tailoring.prompts import (
    BULLET_PROMPT,
    COVER_LETTER_PROMPT,
    SUMMARY_PROMPT,
    ModelCvWriter,
)
from resume import analyze_posting, load_profile, score_match
from stepkit import Prose, StepContext
from stepkit.privacy import (
    Vault,
    private_complete,
)
from stepkit.providers import (
    ChatMessage,
    ChatRequest,
    LocalProvider,
)
from tests.unit.scripted_provider import ScriptedProvider
from tests.unit.test_cv_tailoring import POSTING, RESUME

NAME = "Zoë Ann O'Brien-Smith"
EMAIL = "zoe.obrien+jobs@mail.example.co.uk"
PHONE = "+44 20 7946 0958"
ADDRESS = "221B Baker Street, London NW1 6XE"
SSN = "123-45-6789"
LINKEDIN = "https://www.linkedin.com/in/zoe-obrien"
WEBSITE = "zoebrien.dev"

JOB_INPUT: dict[str, Any] = {
    "resume": {
        **RESUME,
        "name": NAME,
        "email": EMAIL,
        "phone": PHONE,
        "location": ADDRESS,
        "ssn": SSN,
        "linkedin": LINKEDIN,
        "website": WEBSITE,
    },
    "job_posting": POSTING,
}
CONTACTS = (NAME, EMAIL, PHONE, ADDRESS, SSN, LINKEDIN, WEBSITE)

LETTER = f"""Dear Hiring Team,

I am {NAME}. Write to {EMAIL} or call {PHONE} (or 020 7946 0958 from the UK).
I live at {ADDRESS}; my SSN is {SSN}. See {LINKEDIN} and {WEBSITE}.
My old colleague Dr. Jane Roe (jane.roe@corp.example, +1 415-555-0100) can vouch for me,
and my portfolio is at https://example.org/work?id=7. Zoë, O'Brien-Smith and Zoe say hi.

Kind regards,
{NAME}"""


def _vault() -> Vault:
    return Vault.for_input(JOB_INPUT)


def _placeholders(text: str) -> list[str]:
    return re.findall(r"\[[A-Z_]+_\d+\]", text)


# --------------------------------------------------------------------------- mask


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (NAME, "NAME"),
        ("O'Brien-Smith", "NAME"),
        (EMAIL, "EMAIL"),
        (PHONE, "PHONE"),
        (ADDRESS, "ADDRESS"),
        (SSN, "NATIONAL_ID"),
        (LINKEDIN, "URL"),
        (WEBSITE, "URL"),
        # Found by detection, not from the input.
        ("Dr. Jane Roe", "NAME"),
        ("jane.roe@corp.example", "EMAIL"),
        ("+1 415-555-0100", "PHONE"),
        ("10 Downing Street", "ADDRESS"),
        ("QQ 12 34 56 C", "NATIONAL_ID"),
        ("https://example.org/work?id=7", "URL"),
        ("www.example.net/me", "URL"),
        ("github.com/zoe-dev", "URL"),
        ("GB82 WEST 1234 5698 7654 32", "IBAN"),
    ],
)
def test_each_kind_of_detail_becomes_a_placeholder_of_its_kind(value: str, kind: str) -> None:
    vault = _vault()
    masked = vault.mask(f"Details: {value} today")
    assert value not in masked
    (placeholder,) = _placeholders(masked)
    assert re.fullmatch(rf"\[{kind}_\d+\]", placeholder)
    assert masked == f"Details: {placeholder} today"
    assert vault.unmask(masked) == f"Details: {value} today"


def test_no_contact_detail_survives_mask() -> None:
    masked = _vault().mask(LETTER)
    low = masked.lower()
    for detail in (
        *CONTACTS,
        "Zoë",
        "Zoe",
        "Brien",
        "Smith",
        "0958",
        "7946",
        "Baker Street",
        "NW1 6XE",
        "linkedin.com",
        "jane.roe",
        "555-0100",
        "Jane Roe",
        "example.org",
    ):
        assert detail.lower() not in low, detail
    # What is not personal stays readable.
    assert masked.startswith("Dear Hiring Team,\n\nI am [NAME_1]. Write to [EMAIL_1] or call")
    assert "from the UK" in masked
    assert masked.endswith("Kind regards,\n[NAME_1]")


def test_work_facts_are_not_masked() -> None:
    vault = _vault()
    profile = load_profile(RESUME)
    for text in (*profile.texts(), *profile.skills, "Finlytics", "Streamline", "2019 - 2021"):
        assert vault.mask(text) == text


def test_a_value_gets_the_same_placeholder_every_time() -> None:
    vault = _vault()
    first = vault.mask(f"{EMAIL} and {NAME}")
    again = vault.mask(f"{NAME}, {EMAIL}, {EMAIL}")
    assert first == "[EMAIL_1] and [NAME_1]"
    assert again == "[NAME_1], [EMAIL_1], [EMAIL_1]"
    # A value found by detection keeps its number too, and a new one gets the next.
    assert vault.mask("a@b.example") == vault.mask("a@b.example") == "[EMAIL_2]"
    assert vault.mask("c@d.example") == "[EMAIL_3]"
    # The input's values are numbered up front, the same way in every vault of the job.
    assert _vault().mask(f"{NAME} {EMAIL}") == "[NAME_1] [EMAIL_1]"


def test_round_trip_is_exact() -> None:
    vault = _vault()
    texts = [
        LETTER,
        "",
        "no details here",
        "[not a placeholder] [EMAIL] [ADDRESS]",
        f"<{EMAIL}>({PHONE})[{NAME}]",
        "  spaced   out \n\n text\t",
    ]
    for text in texts:
        assert vault.unmask(vault.mask(text)) == text


def test_text_that_looks_like_a_placeholder_is_masked_and_never_becomes_a_detail() -> None:
    vault = _vault()
    text = f"Literally [EMAIL_1] and [ name_1 ], then {EMAIL}."
    masked = vault.mask(text)
    assert masked == "Literally [TEXT_1] and [TEXT_2], then [EMAIL_1]."
    assert vault.unmask(masked) == text
    # A model echoing the escaped literal gets the literal back, not the email.
    assert vault.unmask("[TEXT_1]") == "[EMAIL_1]"


# --------------------------------------------------------------------------- unmask


@pytest.mark.parametrize(
    "written",
    ["[EMAIL_1]", "[email_1]", "[Email_1]", "[ EMAIL_1 ]", "[  email_1]", "[EMAIL-1]", "[EMAIL 1]"],
)
def test_unmask_accepts_case_and_spacing_variants(written: str) -> None:
    vault = _vault()
    vault.mask(EMAIL)
    assert vault.unmask(f"Mail {written}.") == f"Mail {EMAIL}."


def test_unmask_of_national_id_variants() -> None:
    vault = _vault()
    assert vault.mask(SSN) == "[NATIONAL_ID_1]"
    for written in ("[NATIONAL_ID_1]", "[national id 1]", "[National-Id_1]", "[NATIONALID_1]"):
        assert vault.unmask(written) == SSN


def test_unmask_leaves_what_the_vault_did_not_issue() -> None:
    vault = _vault()
    for text in ("[NAME_99]", "[Your Name]", "EMAIL_1", "[EMAIL]", "[EMAIL_1", "[    EMAIL_1]"):
        assert vault.unmask(text) == text


def test_streamed_unmask_equals_unmask_of_the_whole_answer() -> None:
    vault = _vault()
    answer = vault.mask(LETTER) + " [ name_1 ] [email-1] [NAME_99] [x [EMAIL_1"
    whole = vault.unmask(answer)
    assert NAME in whole
    rng = random.Random(7)
    for _ in range(300):
        cuts = sorted(rng.sample(range(1, len(answer)), rng.randint(1, 40)))
        chunks = [answer[a:b] for a, b in zip([0, *cuts], [*cuts, len(answer)], strict=True)]
        unmasker = vault.unmasker()
        out = [unmasker.feed(chunk) for chunk in chunks]
        out.append(unmasker.flush())
        assert "".join(out) == whole
        # Nothing that is emitted holds a placeholder or half of one.
        assert not any("[NAME_1" in part or "[EMA" in part for part in out[:-1])


def test_a_split_placeholder_is_held_back_until_complete() -> None:
    vault = _vault()
    vault.mask(EMAIL)
    unmasker = vault.unmasker()
    assert unmasker.feed("Write to [EM") == "Write to "
    assert unmasker.feed("AIL_") == ""
    assert unmasker.feed("1] today [") == f"[{EMAIL}] today ".replace(f"[{EMAIL}]", EMAIL)
    assert unmasker.flush() == "["


def test_the_vault_never_shows_its_values() -> None:
    vault = _vault()
    vault.mask(LETTER)
    assert EMAIL not in repr(vault)
    assert NAME not in repr(vault)


# --------------------------------------------------------------------------- providers


def _echo(request: ChatRequest) -> str:
    """A model that signs with every placeholder it was given, in lower case."""
    user = "\n".join(m.content for m in request.messages if m.role == "user")
    found = list(dict.fromkeys(_placeholders(user)))
    return "Thank you." + "".join(f" {p.lower()}" for p in found)


async def _offline() -> str:
    return "unused"


async def test_private_complete_masks_the_request_and_unmasks_answer_and_chunks() -> None:
    provider = ScriptedProvider(_echo)
    request = ChatRequest(
        "t@1", (ChatMessage("system", "Be brief."), ChatMessage("user", LETTER)), _offline
    )
    seen: list[str] = []

    async def on_chunk(text: str) -> None:
        seen.append(text)

    done = await private_complete(provider, request, _vault(), on_chunk)
    for detail in CONTACTS:
        assert detail not in provider.prompts()
    assert provider.requests[0].prompt_id == "t@1"
    assert provider.requests[0].messages[0].content == "Be brief."
    for detail in CONTACTS:
        assert detail in done.text
    assert "".join(seen) == done.text
    assert not any(re.search(r"\[[a-z_]+_?$", part) for part in seen)


async def test_the_local_provider_round_trips_its_offline_text_exactly() -> None:
    async def offline() -> str:
        return LETTER

    request = ChatRequest("t@1", (ChatMessage("user", f"Hi {NAME}"),), offline)
    done = await private_complete(LocalProvider(), request, _vault())
    assert done.text == LETTER


# --------------------------------------------------------------------------- the CV writer


def _pipeline_args() -> tuple[Any, Any, Any]:
    profile = load_profile(JOB_INPUT["resume"])
    analysis = analyze_posting(POSTING)
    return profile, analysis, score_match(profile, analysis)


async def test_model_writer_prompts_carry_placeholders_and_answers_carry_details() -> None:
    provider = ScriptedProvider(_echo)
    writer = ModelCvWriter(Prose(provider, Vault.for_input(JOB_INPUT)))
    profile, analysis, match = _pipeline_args()
    letter = await writer.write_cover_letter(profile, analysis, match)
    summary = await writer.write_summary(profile, analysis, match)
    bullet = await writer.rewrite_bullet(f"Built a CRM; ask {EMAIL} or {NAME}", ["Python"])
    sent = provider.prompts()
    for detail in (*CONTACTS, "Brien", "Smith"):
        assert detail not in sent
    letter_prompt = provider.requests[0].messages[1].content
    assert "Candidate's name: [NAME_1]" in letter_prompt
    assert "Candidate's contact details: [EMAIL_1] and [PHONE_1]" in letter_prompt
    assert letter == f"Thank you. {NAME} {EMAIL} {PHONE}"
    assert summary == "Thank you."
    assert bullet == f"Thank you. {EMAIL} {NAME}"
    assert [r.prompt_id for r in provider.requests] == [
        COVER_LETTER_PROMPT,
        SUMMARY_PROMPT,
        BULLET_PROMPT,
    ]
    assert {COVER_LETTER_PROMPT, SUMMARY_PROMPT, BULLET_PROMPT} == {
        "cv_cover_letter@2",
        "cv_summary@2",
        "cv_bullet@2",
    }


async def test_cv_handlers_mask_with_the_job_input() -> None:
    provider = ScriptedProvider(_echo)
    handlers = cv_steps.handlers(provider)
    checkpoints: dict[str, Any] = {}

    async def progress(percent: int, phase: str = "") -> None:
        del percent, phase

    for step in ("load_profile", "analyze_posting", "tailor_cv", "write_cover_letter"):
        handler = handlers[step]
        ctx = StepContext("job-1", "cv_tailoring", step, 1, JOB_INPUT, checkpoints, progress)
        checkpoints = {**checkpoints, step: await handler(ctx)}
    sent = provider.prompts()
    assert "[NAME_1]" in sent
    for detail in (*CONTACTS, "Brien"):
        assert detail not in sent
    letter = checkpoints["write_cover_letter"]["cover_letter"]
    assert f"{NAME} {EMAIL} {PHONE}" in letter


def test_the_full_name_is_name_1_whatever_else_the_input_holds() -> None:
    handle = "ada.lovelace.analytical.engine"
    vault = Vault.for_input({"resume": {"name": "Ada Lovelace", "email": f"{handle}@x.example"}})
    assert vault.mask(f"Ada Lovelace, {handle}, Lovelace") == "[NAME_1], [NAME_2], [NAME_3]"
