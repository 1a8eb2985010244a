"""The prose-writing seam: a narrow protocol, and a deterministic template implementation.

The engine decides *what* may be said (which skills, which facts); a writer only decides
*how* to say it. A model-backed writer implements :class:`CvWriter` too, and the engine
checks its output (see ``tailor.py``) rather than trusting it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from resume.match import Match
from resume.posting import PostingAnalysis
from resume.profile import Profile
from resume.vocabulary import find_skills, iter_skill_mentions, skill_key


class CvWriter(Protocol):
    """Writes the tailored CV's prose. Implementations must only restate facts they are
    given: a skill not in ``match.matched_skills``/``matched_nice_to_have`` or the profile
    must not be claimed, and no employer, title, date or figure may be invented. Output is
    plain text (no Markdown headings)."""

    async def write_summary(self, profile: Profile, analysis: PostingAnalysis, match: Match) -> str:
        """A two-to-four sentence professional summary pitched at the posting."""
        ...

    async def rewrite_bullet(self, bullet: str, skills: Sequence[str]) -> str:
        """``bullet`` reworded to lead with ``skills`` (the matched skills it already
        mentions, most important first). It must not mention any other skill."""
        ...

    async def write_cover_letter(
        self, profile: Profile, analysis: PostingAnalysis, match: Match
    ) -> str:
        """A short cover letter opening "Dear Hiring Team at {company}," and signed with
        the candidate's name. It may name up to two of ``match.missing_skills`` as areas
        the candidate is keen to grow in, never as experience."""
        ...


def join_words(items: Sequence[str]) -> str:
    """``["a", "b", "c"]`` as "a, b and c"."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else f"{text}."


def top_bullet(profile: Profile, skills: Sequence[str]) -> str:
    """The bullet naming the most of ``skills`` (the earliest among equals), or ``""``."""
    wanted = {skill_key(skill) for skill in skills}
    best, best_hits = "", 0
    for role in profile.experience:
        for bullet in role.bullets:
            hits = len({skill_key(s) for s in find_skills(bullet)} & wanted)
            if hits > best_hits:
                best, best_hits = bullet, hits
    return best


class LocalCvWriter:
    """A :class:`CvWriter` built from templates: offline, deterministic and truthful by
    construction (every fact comes from the profile, the analysis or the match)."""

    async def write_summary(self, profile: Profile, analysis: PostingAnalysis, match: Match) -> str:
        """Latest title and employers, the matched skills, and the résumé's own opening line."""
        companies = list(dict.fromkeys(role.company for role in profile.experience))[:3]
        lead = profile.experience[0].title if profile.experience else profile.headline
        sentences = []
        if lead:
            at = f" with experience at {join_words(companies)}" if companies else ""
            sentences.append(f"{lead}{at}.")
        skills = [*match.matched_skills, *match.matched_nice_to_have][:5]
        if skills:
            sentences.append(
                f"Hands-on with {join_words(skills)}, the core of the {analysis.title} role"
                f" at {analysis.company}."
            )
        elif profile.skills:
            sentences.append(f"Skilled in {join_words(profile.skills[:5])}.")
        if profile.summary:
            sentences.append(_sentence(re.split(r"(?<=[.!?])\s+", profile.summary)[0]))
        return " ".join(sentences)

    async def rewrite_bullet(self, bullet: str, skills: Sequence[str]) -> str:
        """Prefix the bullet with its (at most two) leading skills, unless it already
        starts with the first one."""
        first = next(iter_skill_mentions(bullet), None)
        if not skills or (first and first.start == 0 and first.skill == skills[0]):
            return bullet
        return f"{' & '.join(skills[:2])}: {bullet}"

    async def write_cover_letter(
        self, profile: Profile, analysis: PostingAnalysis, match: Match
    ) -> str:
        """Role, matched skills with one supporting bullet, up to two gaps, sign-off."""
        company, name = analysis.company, profile.name
        opening = f"I am writing to apply for the {analysis.title} role at {company}."
        if profile.experience:
            latest = profile.experience[0]
            opening += f" Most recently I worked as {latest.title} at {latest.company}."
        paragraphs = [f"Dear Hiring Team at {company},", opening]
        skills = [*match.matched_skills, *match.matched_nice_to_have][:4]
        if skills:
            body = f"I have hands-on experience with {join_words(skills)}."
            example = top_bullet(profile, skills)
            if example:
                body += f" For example: {_sentence(example)}"
            paragraphs.append(body)
        gaps = list(match.missing_skills[:2])
        if gaps:
            verb, pronoun = ("is", "it") if len(gaps) == 1 else ("are", "them")
            paragraphs.append(
                f"{join_words(gaps)} {verb} not yet part of my track record, and I am keen"
                f" to grow in {pronoun}."
            )
        paragraphs.append(
            "Thank you for considering my application. I would welcome the chance to discuss"
            f" how I could contribute to {company}."
        )
        paragraphs.append(f"Kind regards,\n{name}")
        return "\n\n".join(paragraphs)
