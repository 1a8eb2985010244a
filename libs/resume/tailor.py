"""Tailoring the CV and writing the cover letter, with the writer's output held to the facts."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from resume.match import Match, evidenced_skills, profile_text
from resume.posting import PostingAnalysis
from resume.profile import (
    Education,
    Profile,
    Role,
    clean,
    clean_list,
    education_from,
    roles_from,
)
from resume.vocabulary import find_skills, skill_key
from resume.writer import CvWriter

# Words of a posting title that state a level rather than a job; the tailored headline keeps
# one only if the candidate has held it.
_LEVEL_TEXT = (
    "senior sr junior jr lead principal staff mid mid-level intermediate entry-level ii iii"
)
_LEVEL_WORDS = frozenset(_LEVEL_TEXT.split())
_MAX_GAPS_IN_LETTER = 2


class WriterOutputError(ValueError):
    """A writer's text is unusable: it is empty or claims skills the résumé does not show.

    Retrying a model-backed writer may help. The message never quotes the text.
    """

    def __init__(self, what: str, skills: Sequence[str] = ()) -> None:
        problem = f"claims {len(skills)} unsupported skill(s)" if skills else "is empty"
        super().__init__(f"the generated {what} {problem}")
        #: The offending vocabulary skill names (not personal data).
        self.skills = tuple(skills)


@dataclass(frozen=True, slots=True)
class TailoredCv:
    """The CV rewritten for one posting. ``gaps`` are the required skills it does not show."""

    name: str
    headline: str = ""
    email: str = ""
    phone: str = ""
    location: str = ""
    summary: str = ""
    skills: tuple[str, ...] = ()
    experience: tuple[Role, ...] = ()
    education: tuple[Education, ...] = ()
    gaps: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A Struct-safe dict in the résumé's shape plus ``gaps``."""
        return {
            "name": self.name,
            "headline": self.headline,
            "email": self.email,
            "phone": self.phone,
            "location": self.location,
            "summary": self.summary,
            "skills": list(self.skills),
            "experience": [role.to_dict() for role in self.experience],
            "education": [degree.to_dict() for degree in self.education],
            "gaps": list(self.gaps),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TailoredCv:
        """Read back a :meth:`to_dict` result."""
        return cls(
            name=clean(data.get("name")),
            headline=clean(data.get("headline")),
            email=clean(data.get("email")),
            phone=clean(data.get("phone")),
            location=clean(data.get("location")),
            summary=clean(data.get("summary")),
            skills=clean_list(data.get("skills")),
            experience=roles_from(data.get("experience")),
            education=education_from(data.get("education")),
            gaps=clean_list(data.get("gaps")),
        )


def _keys(skills: Iterable[str]) -> set[str]:
    return {skill_key(skill) for skill in skills}


def _has_word(text: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE) is not None


def _truthful_title(profile: Profile, posting_title: str) -> str:
    """The posting's title, if the résumé backs it: the candidate has held a role with the
    same job noun ("Engineer") and mentions every other word ("Backend") somewhere. Level
    words ("Senior") stay only if one of their titles has them. ``""`` otherwise."""
    # "Senior Engineer - Payments (Remote)": the job is what comes before the qualifiers.
    main = re.split(r"\s[-\u2013\u2014|/]\s|[(,]", posting_title)[0]
    held = " ".join([profile.headline, *(role.title for role in profile.experience)])
    everything = profile_text(profile)
    kept: list[str] = []
    core: list[str] = []
    for word in main.split():
        if word.casefold().strip(".") in _LEVEL_WORDS:
            if _has_word(held, word):
                kept.append(word)
            continue
        kept.append(word)
        core.append(word)
    if not core or not _has_word(held, core[-1]):
        return ""
    return " ".join(kept) if all(_has_word(everything, word) for word in core) else ""


def _headline(profile: Profile, analysis: PostingAnalysis, match: Match) -> str:
    title = _truthful_title(profile, analysis.title)
    if not title:
        return profile.headline or (profile.experience[0].title if profile.experience else "")
    skills = ", ".join(match.matched_skills[:3])
    return f"{title} \u00b7 {skills}" if skills else title


def _ordered_skills(profile: Profile, matched: Sequence[str]) -> tuple[str, ...]:
    """Matched skills first (most important first, in the candidate's spelling), then the
    rest of the candidate's list in its order. A matched skill shown only in prose joins
    the list: the résumé evidences it, so listing it invents nothing."""
    by_key = {skill_key(skill): skill for skill in profile.skills}
    ordered = [by_key.get(skill_key(skill), skill) for skill in matched]
    taken = _keys(ordered)
    return (*ordered, *(skill for skill in profile.skills if skill_key(skill) not in taken))


async def _tailor_role(role: Role, matched: Sequence[str], writer: CvWriter) -> Role:
    rank = {skill_key(skill): i for i, skill in enumerate(matched)}
    scored: list[tuple[list[str], int, str]] = []
    for index, bullet in enumerate(role.bullets):
        named = [s for s in find_skills(bullet) if skill_key(s) in rank]
        scored.append((sorted(named, key=lambda s: rank[skill_key(s)]), index, bullet))
    # Bullets naming matched skills first, those naming more of them ahead; ties keep order.
    scored.sort(key=lambda item: (not item[0], -len(item[0]), item[1]))
    bullets: list[str] = []
    for named, _, bullet in scored:
        rewritten = clean(await writer.rewrite_bullet(bullet, named)) if named else bullet
        # A rewrite must not add skills; rather than fail the job, keep the original words.
        if not rewritten or _keys(find_skills(rewritten)) - _keys(find_skills(bullet)):
            rewritten = bullet
        bullets.append(rewritten)
    return Role(role.title, role.company, role.start, role.end, tuple(bullets))


def _unsupported(text: str, profile: Profile, analysis: PostingAnalysis) -> list[str]:
    """Skills ``text`` names that the résumé does not show. Naming the posting's title or
    company ("Snowflake") is not a claim."""
    allowed = _keys(evidenced_skills(profile))
    allowed |= _keys(find_skills(f"{analysis.title}\n{analysis.company}"))
    return [skill for skill in find_skills(text) if skill_key(skill) not in allowed]


async def tailor_cv(
    profile: Profile, analysis: PostingAnalysis, match: Match, writer: CvWriter
) -> TailoredCv:
    """Tailor the CV to the posting.

    The headline takes the posting's title only where the résumé backs it; the summary comes
    from ``writer``; skills and each role's bullets are reordered matched-first and the
    matched bullets reworded by ``writer`` to lead with their skills. Roles, employers,
    dates and education are kept as they are. Raises :class:`WriterOutputError` if the
    summary claims a skill the résumé does not show.
    """
    summary = clean(await writer.write_summary(profile, analysis, match))
    unsupported = _unsupported(summary, profile, analysis)
    if unsupported:
        raise WriterOutputError("summary", unsupported)
    matched = [*match.matched_skills, *match.matched_nice_to_have]
    return TailoredCv(
        name=profile.name,
        headline=_headline(profile, analysis, match),
        email=profile.email,
        phone=profile.phone,
        location=profile.location,
        summary=summary or profile.summary,
        skills=_ordered_skills(profile, matched),
        experience=tuple(
            [await _tailor_role(role, matched, writer) for role in profile.experience]
        ),
        education=profile.education,
        gaps=match.missing_skills,
    )


async def write_cover_letter(
    profile: Profile, analysis: PostingAnalysis, match: Match, writer: CvWriter
) -> str:
    """The cover letter from ``writer``, checked and normalised.

    It may name at most two of the missing skills (as things to grow in) and no other skill
    the résumé lacks, else :class:`WriterOutputError`. The greeting is made
    "Dear Hiring Team at {company}," and a sign-off with the candidate's name is added if
    the letter does not end with it.
    """
    letter = (await writer.write_cover_letter(profile, analysis, match)).strip()
    if not letter:
        raise WriterOutputError("cover letter")
    unsupported = _unsupported(letter, profile, analysis)
    missing = _keys(match.missing_skills)
    if len(unsupported) > _MAX_GAPS_IN_LETTER or any(
        skill_key(s) not in missing for s in unsupported
    ):
        raise WriterOutputError("cover letter", unsupported)
    greeting = f"Dear Hiring Team at {analysis.company},"
    first, _, rest = letter.partition("\n")
    if first.strip() != greeting:
        letter = f"{greeting}\n{rest}" if first.startswith("Dear ") else f"{greeting}\n\n{letter}"
    if letter.splitlines()[-1].strip() != profile.name:
        letter += f"\n\nKind regards,\n{profile.name}"
    return letter
