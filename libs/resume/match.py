"""How well a profile fits a posting: which skills it shows, which it lacks, and a score."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from resume.posting import PostingAnalysis
from resume.profile import Profile, clean_list
from resume.vocabulary import canonical_skill, find_skills, skill_key

# Required skills dominate; nice-to-haves and the posting's vocabulary only nudge the score.
_WEIGHTS = (Fraction(75), Fraction(15), Fraction(10))


@dataclass(frozen=True, slots=True)
class Match:
    """The fit between a profile and a posting. Skill lists follow the posting's order of
    importance; ``match_score`` is 0-100."""

    match_score: int
    matched_skills: tuple[str, ...] = ()
    missing_skills: tuple[str, ...] = ()
    matched_nice_to_have: tuple[str, ...] = ()
    missing_nice_to_have: tuple[str, ...] = ()
    matched_keywords: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A Struct-safe dict; :meth:`from_dict` reads it back."""
        return {
            "match_score": self.match_score,
            "matched_skills": list(self.matched_skills),
            "missing_skills": list(self.missing_skills),
            "matched_nice_to_have": list(self.matched_nice_to_have),
            "missing_nice_to_have": list(self.missing_nice_to_have),
            "matched_keywords": list(self.matched_keywords),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Match:
        """Read back a :meth:`to_dict` result, whose score may have become a float."""
        return cls(
            match_score=int(data.get("match_score") or 0),
            matched_skills=clean_list(data.get("matched_skills")),
            missing_skills=clean_list(data.get("missing_skills")),
            matched_nice_to_have=clean_list(data.get("matched_nice_to_have")),
            missing_nice_to_have=clean_list(data.get("missing_nice_to_have")),
            matched_keywords=clean_list(data.get("matched_keywords")),
        )


def evidenced_skills(profile: Profile) -> tuple[str, ...]:
    """Every skill the résumé shows: listed ones, and vocabulary skills named in the
    headline, summary, role titles or bullets. The only skills the tailored CV and the
    cover letter may claim."""
    found: list[str] = []
    for skill in profile.skills:
        # "Python 3" or "AWS (EC2, S3)" name vocabulary skills without being one.
        found.extend([canonical_skill(skill) or skill, *find_skills(skill)])
    for text in profile.texts():
        found.extend(find_skills(text))
    unique: dict[str, str] = {}
    for skill in found:
        unique.setdefault(skill_key(skill), skill)
    return tuple(unique.values())


def profile_text(profile: Profile) -> str:
    """All of the résumé's prose and skills, one field a line."""
    lines = [*profile.texts(), *profile.skills]
    lines += [f"{d.degree} {d.institution}" for d in profile.education]
    return "\n".join(line for line in lines if line)


def mentions_term(text: str, term: str) -> bool:
    """Whether ``text`` contains ``term`` as whole words, ignoring case, hyphens vs spaces
    and a plural "s"."""
    words = [re.escape(word) for word in term.split()]
    if not words:
        return False
    pattern = r"[\s-]+".join(words) + ("" if term.endswith("s") else "s?")
    return re.search(rf"(?<!\w){pattern}(?!\w)", text, re.IGNORECASE) is not None


def _split(wanted: Sequence[str], shown: set[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    matched = tuple(skill for skill in wanted if skill_key(skill) in shown)
    return matched, tuple(skill for skill in wanted if skill_key(skill) not in shown)


def score_match(profile: Profile, analysis: PostingAnalysis) -> Match:
    """Compare a profile with a posting analysis.

    The score weighs the share of required skills shown (75), of nice-to-haves (15) and of
    the posting's keywords found in the résumé (10); a part the posting lacks is left out
    and the rest rescaled. It is 0 only when nothing matches and 100 only when everything
    does; anything in between is floored into 1-99.
    """
    shown = {skill_key(skill) for skill in evidenced_skills(profile)}
    matched, missing = _split(analysis.required_skills, shown)
    nice_matched, nice_missing = _split(analysis.nice_to_have_skills, shown)
    text = profile_text(profile)
    keywords = tuple(k for k in analysis.keywords if mentions_term(text, k))
    parts = [
        (weight, len(hits), len(total))
        for weight, hits, total in zip(
            _WEIGHTS,
            (matched, nice_matched, keywords),
            (analysis.required_skills, analysis.nice_to_have_skills, analysis.keywords),
            strict=True,
        )
        if total
    ]
    hits = sum(hit for _, hit, _ in parts)
    if not hits:
        score = 0
    elif all(hit == total for _, hit, total in parts):
        score = 100
    else:
        weighted = sum(weight * hit / total for weight, hit, total in parts)
        fraction = weighted * 100 / sum(weight for weight, _, _ in parts)
        score = min(99, max(1, int(fraction)))
    return Match(
        match_score=score,
        matched_skills=matched,
        missing_skills=missing,
        matched_nice_to_have=nice_matched,
        missing_nice_to_have=nice_missing,
        matched_keywords=keywords,
    )
