"""A :class:`CvWriter` that asks a model provider, with versioned prompts.

Every piece of prose goes through a ``ChatProvider``. Each request carries the template
answer of :class:`LocalCvWriter` as its offline text, so with the ``local`` provider the
output is exactly the template writer's, and with a real model the engine still checks
whatever comes back (``tailor.py``).

The prompts hold the facts a writer may use and nothing more, and every one goes through a
:class:`~services.ai_worker.privacy.Vault` on its way out: the candidate's name and contact
details reach the model only as placeholders (``[NAME_1]``, ``[EMAIL_1]``), which are put
back in its answer. So the cover letter prompt can give the name and contact details, and
the letter the model signs with ``[NAME_1]`` is signed with the candidate's name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from services.ai_worker.cv.match import Match
from services.ai_worker.cv.posting import PostingAnalysis
from services.ai_worker.cv.profile import Profile
from services.ai_worker.cv.writer import CvWriter, LocalCvWriter, join_words, top_bullet
from services.ai_worker.model_calls import ask_model
from services.ai_worker.privacy import Vault, current_vault
from services.ai_worker.providers.base import ChatMessage, ChatProvider, ChatRequest

#: Prompt ids with their versions; bump the version whenever a prompt's wording changes.
#: @2: the system prompt explains placeholders; the cover letter gets the name and contact
#: details (as placeholders) and signs off itself.
SUMMARY_PROMPT = "cv_summary@2"
BULLET_PROMPT = "cv_bullet@2"
COVER_LETTER_PROMPT = "cv_cover_letter@2"

_SYSTEM = (
    "You write the prose of a CV and cover letter for a job applicant. Use only the facts "
    "you are given. Never claim a skill, tool, employer, title, date or figure that is not "
    "in them. Private details such as the candidate's name, email or phone are given as "
    "placeholders: a kind and a number in square brackets. Copy a placeholder exactly as "
    "written wherever that detail belongs, and never make one up. Answer with plain text "
    "only: no Markdown, no headings, no preamble, no quotes around the answer."
)


def _listing(items: Sequence[str]) -> str:
    return join_words(list(items)) or "(none)"


def _system() -> ChatMessage:
    return ChatMessage("system", _SYSTEM)


def summary_messages(
    profile: Profile, analysis: PostingAnalysis, match: Match
) -> tuple[ChatMessage, ...]:
    latest = profile.experience[0].title if profile.experience else profile.headline
    employers = list(dict.fromkeys(role.company for role in profile.experience))[:3]
    facts = "\n".join(
        [
            f"Role applied for: {analysis.title} at {analysis.company}",
            f"Candidate's latest title: {latest or '(none)'}",
            f"Employers: {_listing(employers)}",
            "Skills the role asks for that the candidate has shown: "
            f"{_listing([*match.matched_skills, *match.matched_nice_to_have])}",
            f"Other skills of the candidate: {_listing(profile.skills)}",
            f"The candidate's own summary: {profile.summary or '(none)'}",
        ]
    )
    ask = (
        "Write a professional summary of two to four sentences for the CV, pitched at the "
        "role. Mention only skills from the two skill lists."
    )
    return (_system(), ChatMessage("user", f"{ask}\n\n{facts}"))


def bullet_messages(bullet: str, skills: Sequence[str]) -> tuple[ChatMessage, ...]:
    ask = (
        "Reword this CV bullet so that it leads with "
        f"{_listing(skills)}. Keep every fact and figure, mention no other skill or "
        "technology, and answer with the reworded bullet only."
    )
    return (_system(), ChatMessage("user", f"{ask}\n\nBullet: {bullet}"))


def cover_letter_messages(
    profile: Profile, analysis: PostingAnalysis, match: Match
) -> tuple[ChatMessage, ...]:
    skills = [*match.matched_skills, *match.matched_nice_to_have][:4]
    latest = profile.experience[0] if profile.experience else None
    facts = [
        f"Role applied for: {analysis.title} at {analysis.company}",
        f"Candidate's latest role: {f'{latest.title} at {latest.company}' if latest else '(none)'}",
        f"Skills the role asks for that the candidate has shown: {_listing(skills)}",
    ]
    example = top_bullet(profile, skills)
    if example:
        facts.append(f"An achievement from the CV: {example}")
    gaps = match.missing_skills[:2]
    if gaps:
        facts.append(
            f"Skills the role asks for that the candidate lacks: {_listing(gaps)} (name them "
            "only as areas the candidate is keen to grow in, never as experience)"
        )
    facts.append(f"Candidate's name: {profile.name}")
    contact = [detail for detail in (profile.email, profile.phone) if detail]
    if contact:
        facts.append(f"Candidate's contact details: {_listing(contact)}")
    ask = (
        "Write a short cover letter of three or four paragraphs. The first line is exactly "
        f'"Dear Hiring Team at {analysis.company},". The last paragraph may say how to reach '
        'the candidate. End with "Kind regards," and, on the last line, the candidate\'s name '
        "exactly as given."
    )
    return (_system(), ChatMessage("user", ask + "\n\n" + "\n".join(facts)))


class ModelCvWriter:
    """Writes through ``provider``; the templates of ``templates`` are the offline answers.

    Prompts are masked with the step's vault (:func:`~services.ai_worker.privacy.
    private_prompts`, opened by the handler from the job input); outside one, with a vault
    of the profile's details, or for a bullet, of what detection finds in it.
    """

    def __init__(self, provider: ChatProvider, templates: CvWriter | None = None) -> None:
        self._provider = provider
        self._templates = templates or LocalCvWriter()

    async def _ask(
        self,
        prompt_id: str,
        messages: tuple[ChatMessage, ...],
        offline: Callable[[], Awaitable[str]],
        max_tokens: int,
        profile: Profile | None = None,
    ) -> str:
        vault = current_vault()
        if vault is None:
            vault = Vault.for_input({"resume": profile.to_dict()}) if profile else Vault()
        request = ChatRequest(prompt_id, messages, offline, max_tokens=max_tokens)
        return await ask_model(self._provider, request, vault)

    async def write_summary(self, profile: Profile, analysis: PostingAnalysis, match: Match) -> str:
        """See :meth:`CvWriter.write_summary`."""
        return await self._ask(
            SUMMARY_PROMPT,
            summary_messages(profile, analysis, match),
            lambda: self._templates.write_summary(profile, analysis, match),
            max_tokens=300,
            profile=profile,
        )

    async def rewrite_bullet(self, bullet: str, skills: Sequence[str]) -> str:
        """See :meth:`CvWriter.rewrite_bullet`."""
        return await self._ask(
            BULLET_PROMPT,
            bullet_messages(bullet, skills),
            lambda: self._templates.rewrite_bullet(bullet, skills),
            max_tokens=150,
        )

    async def write_cover_letter(
        self, profile: Profile, analysis: PostingAnalysis, match: Match
    ) -> str:
        """See :meth:`CvWriter.write_cover_letter`."""
        return await self._ask(
            COVER_LETTER_PROMPT,
            cover_letter_messages(profile, analysis, match),
            lambda: self._templates.write_cover_letter(profile, analysis, match),
            max_tokens=800,
            profile=profile,
        )
