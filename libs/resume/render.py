"""The Markdown preview and the job's final result document."""

from __future__ import annotations

from typing import Any

from resume.match import Match
from resume.posting import PostingAnalysis
from resume.profile import Role
from resume.tailor import TailoredCv


def _dates(role: Role) -> str:
    if role.start:
        return f" ({role.start} \u2013 {role.end or 'Present'})"
    return f" ({role.end})" if role.end else ""


def render_preview(
    cv: TailoredCv, cover_letter: str, match: Match, analysis: PostingAnalysis
) -> str:
    """The tailored CV and cover letter as one Markdown document: name, headline, contact
    line, match score, Summary, Skills, Experience, Education, Gaps to address (if any),
    then a rule and the Cover letter. Empty sections are left out."""
    lines = [f"# {cv.name}", ""]
    if cv.headline:
        lines += [f"**{cv.headline}**", ""]
    contact = [field for field in (cv.email, cv.phone, cv.location) if field]
    if contact:
        lines += [" \u00b7 ".join(contact), ""]
    target = " at ".join(part for part in (analysis.title, analysis.company) if part)
    score = f"**Match score:** {match.match_score}/100"
    lines += [f"{score} for {target}" if target else score, ""]
    if cv.summary:
        lines += ["## Summary", "", cv.summary, ""]
    if cv.skills:
        lines += ["## Skills", "", ", ".join(cv.skills), ""]
    if cv.experience:
        lines += ["## Experience", ""]
        for role in cv.experience:
            lines += [f"### {role.title} \u2014 {role.company}{_dates(role)}", ""]
            if role.bullets:
                lines += [*(f"- {bullet}" for bullet in role.bullets), ""]
    if cv.education:
        lines += ["## Education", ""]
        for degree in cv.education:
            year = f" ({degree.year})" if degree.year else ""
            lines.append(f"- {degree.degree} \u2014 {degree.institution}{year}")
        lines.append("")
    if cv.gaps or match.missing_nice_to_have:
        lines += ["## Gaps to address", ""]
        lines += [f"- {skill}" for skill in cv.gaps]
        lines += [f"- {skill} (nice to have)" for skill in match.missing_nice_to_have]
        lines.append("")
    lines += ["---", "", "## Cover letter", "", cover_letter.strip(), ""]
    return "\n".join(lines)


def tailoring_result(
    cv: TailoredCv, cover_letter: str, match: Match, preview: str
) -> dict[str, Any]:
    """The ``cv_tailoring`` job's result document (Struct-safe), with exactly the keys
    ``tailored_cv``, ``cover_letter``, ``match_score``, ``matched_skills``,
    ``missing_skills`` and ``preview_markdown``."""
    return {
        "tailored_cv": cv.to_dict(),
        "cover_letter": cover_letter,
        "match_score": match.match_score,
        "matched_skills": list(match.matched_skills),
        "missing_skills": list(match.missing_skills),
        "preview_markdown": preview,
    }
