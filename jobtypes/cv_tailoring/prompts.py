"""The prompts of ``cv_tailoring``, versioned, and the :class:`CvWriter` that asks them.

Every piece of prose goes through the step's :class:`~stepkit.Prose`. Each request
carries the template answer of :class:`LocalCvWriter` as its offline text, so with the
``local`` provider the output is exactly the template writer's, and with a real model the
engine still checks whatever comes back (``resume/tailor.py``).

The prompts hold the facts a writer may use and nothing more, and every one goes through a
:class:`~stepkit.privacy.Vault` on its way out: the candidate's name and contact
details reach the model only as placeholders (``[NAME_1]``, ``[EMAIL_1]``), which are put
back in its answer. So the cover letter prompt can give the name and contact details, and
the letter the model signs with ``[NAME_1]`` is signed with the candidate's name.
"""

from __future__ import annotations

from collections.abc import Sequence

from resume.match import Match
from resume.posting import PostingAnalysis
from resume.profile import Profile
from resume.writer import CvWriter, LocalCvWriter, join_words, top_bullet
from stepkit import ChatMessage, Prose

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
    """Writes through ``prose`` (masked by its step's vault); the templates of
    ``templates`` are the offline answers."""

    def __init__(self, prose: Prose, templates: CvWriter | None = None) -> None:
        self._prose = prose
        self._templates = templates or LocalCvWriter()

    async def write_summary(self, profile: Profile, analysis: PostingAnalysis, match: Match) -> str:
        """See :meth:`CvWriter.write_summary`."""
        return await self._prose.complete(
            SUMMARY_PROMPT,
            summary_messages(profile, analysis, match),
            lambda: self._templates.write_summary(profile, analysis, match),
            max_tokens=300,
        )

    async def rewrite_bullet(self, bullet: str, skills: Sequence[str]) -> str:
        """See :meth:`CvWriter.rewrite_bullet`."""
        return await self._prose.complete(
            BULLET_PROMPT,
            bullet_messages(bullet, skills),
            lambda: self._templates.rewrite_bullet(bullet, skills),
            max_tokens=150,
        )

    async def write_cover_letter(
        self, profile: Profile, analysis: PostingAnalysis, match: Match
    ) -> str:
        """See :meth:`CvWriter.write_cover_letter`."""
        return await self._prose.complete(
            COVER_LETTER_PROMPT,
            cover_letter_messages(profile, analysis, match),
            lambda: self._templates.write_cover_letter(profile, analysis, match),
            max_tokens=800,
        )
