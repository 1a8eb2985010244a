"""The ``resume_improvement`` job type: suggestions for a résumé, no posting needed.

Steps (see ``spec.py``)::

    load_resume        the résumé, normalised as cv_tailoring does
    analyze_resume     findings: weak opening verbs, bullets without figures, length,
                       missing sections, listed skills the experience never shows; a score
    write_suggestions  through the provider: a suggestion for each of the weakest bullets,
                       and an overview of what to fix first
    render_report      the result, with a Markdown report

The analysis is deterministic. With the ``local`` provider the prose is the template text
below; a model's rewrite of a bullet that names a skill the résumé never shows, or a figure
the bullet does not have, is replaced by the template's advice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from jobtypes.resume_improvement.spec import (
    ANALYZE_RESUME,
    LOAD_RESUME,
    RENDER_REPORT,
    WRITE_SUGGESTIONS,
)
from resume import Profile, evidenced_skills, find_skills
from resume.steps import load_resume, profile_of
from resume.vocabulary import skill_key
from stepkit import ChatMessage, ChatProvider, Handler, Prose, StepContext, listing, system

#: Prompt ids with their versions; bump the version whenever a prompt's wording changes.
BULLET_PROMPT = "resume_bullet_suggestion@1"
OVERVIEW_PROMPT = "resume_overview@1"

#: At most this many bullets get a written suggestion (each is one model call).
MAX_REWRITES = 6

# Openers that say what someone was near rather than what they did, and verbs to use instead.
WEAK_OPENERS: Mapping[str, tuple[str, ...]] = {
    "was responsible for": ("Owned", "Led"),
    "responsible for": ("Owned", "Led"),
    "duties included": ("Delivered", "Ran"),
    "in charge of": ("Led", "Directed"),
    "tasked with": ("Delivered", "Executed"),
    "worked on": ("Built", "Developed"),
    "worked with": ("Partnered with", "Collaborated with"),
    "helped with": ("Enabled", "Contributed to"),
    "helped": ("Enabled", "Contributed to"),
    "assisted with": ("Supported", "Co-led"),
    "assisted in": ("Supported", "Co-led"),
    "assisted": ("Supported", "Co-led"),
    "involved in": ("Contributed to", "Drove"),
    "participated in": ("Contributed to", "Drove"),
    "was part of": ("Contributed to", "Drove"),
    "dealt with": ("Resolved", "Managed"),
    "handled": ("Managed", "Resolved"),
    "utilized": ("Applied", "Used"),
    "used": ("Applied", "Built with"),
    "made": ("Created", "Designed"),
    "did": ("Performed", "Delivered"),
}
_OPENER = re.compile(
    r"^(?:i\s+)?(?P<opener>"
    + "|".join(re.escape(o).replace(r"\ ", r"\s+") for o in sorted(WEAK_OPENERS, key=len)[::-1])
    + r")\b",
    re.IGNORECASE,
)
_NUMBER_WORDS = (
    "one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty "
    "fifty hundred hundreds thousand thousands million millions billion billions dozen dozens "
    "half double doubled doubling triple tripled tripling halved halving"
)
_FIGURE = re.compile(r"\d|[%$€£¥]|\b(?:" + "|".join(_NUMBER_WORDS.split()) + r")\b", re.IGNORECASE)
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")

LONG_BULLET_WORDS = 35
SHORT_BULLET_WORDS = 4
MAX_BULLETS_PER_ROLE = 6
LONG_SUMMARY_WORDS = 80
#: About two pages of résumé text.
LONG_RESUME_WORDS = 800
REPEATED_OPENER = 3

SEVERITIES = ("high", "medium", "low")
_PENALTY = {"high": 10, "medium": 5, "low": 2}


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing to improve. ``path`` points into the résumé input
    (``experience[0].bullets[1]``); ``where`` says the same for people."""

    code: str
    severity: str
    path: str
    where: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        return cls(**{key: str(data.get(key, "")) for key in cls.__slots__})


def _words(text: str) -> int:
    return len(text.split())


def weak_opener(bullet: str) -> str:
    """The weak opener ``bullet`` starts with, as written, or ``""``."""
    found = _OPENER.match(bullet)
    return found.group("opener") if found else ""


def strong_verbs(opener: str) -> tuple[str, ...]:
    return WEAK_OPENERS[" ".join(opener.lower().split())]


def has_figure(text: str) -> bool:
    """Whether ``text`` quantifies anything: a digit, a currency or percent sign, or a
    number word ("four", "doubled")."""
    return _FIGURE.search(text) is not None


def _bullet_findings(profile: Profile) -> list[Finding]:
    found: list[Finding] = []
    openers: dict[str, list[str]] = {}
    for i, role in enumerate(profile.experience):
        at = f"{role.title} at {role.company}"
        if not role.bullets:
            found.append(
                Finding(
                    "role_without_bullets",
                    "medium",
                    f"experience[{i}]",
                    at,
                    "No bullets: add two to four achievements, each with a result.",
                )
            )
        elif len(role.bullets) > MAX_BULLETS_PER_ROLE:
            found.append(
                Finding(
                    "too_many_bullets",
                    "low",
                    f"experience[{i}].bullets",
                    at,
                    f"{len(role.bullets)} bullets: keep the {MAX_BULLETS_PER_ROLE} strongest.",
                )
            )
        if not role.start and not role.end:
            found.append(
                Finding(
                    "missing_dates",
                    "low",
                    f"experience[{i}]",
                    at,
                    "No dates: add when you started and ended (or 'present').",
                )
            )
        for j, bullet in enumerate(role.bullets):
            path, where = f"experience[{i}].bullets[{j}]", f"{at}, bullet {j + 1}"
            opener = weak_opener(bullet)
            if opener:
                verbs = " or ".join(strong_verbs(opener))
                found.append(
                    Finding(
                        "weak_verb",
                        "high",
                        path,
                        where,
                        f'Opens with "{opener}": lead with what you did, e.g. {verbs}.',
                    )
                )
            elif bullet.split()[0].lower() == "i":
                found.append(
                    Finding(
                        "first_person",
                        "low",
                        path,
                        where,
                        'Starts with "I": résumé bullets start with the verb.',
                    )
                )
            if not has_figure(bullet):
                found.append(
                    Finding(
                        "no_figure",
                        "medium",
                        path,
                        where,
                        "No figure: say how much, how many or how often.",
                    )
                )
            words = _words(bullet)
            if words > LONG_BULLET_WORDS:
                found.append(
                    Finding(
                        "long_bullet",
                        "low",
                        path,
                        where,
                        f"{words} words: cut it to the action and its result.",
                    )
                )
            elif words < SHORT_BULLET_WORDS:
                found.append(
                    Finding(
                        "short_bullet",
                        "low",
                        path,
                        where,
                        "Too short to show an achievement: add what changed and by how much.",
                    )
                )
            first = bullet.split()[0].strip(",.;:").lower()
            openers.setdefault(first, []).append(path)
    for verb, paths in openers.items():
        if len(paths) >= REPEATED_OPENER and verb != "i":
            found.append(
                Finding(
                    "repeated_verb",
                    "low",
                    paths[0],
                    "Experience",
                    f'{len(paths)} bullets open with "{verb.capitalize()}": vary the verbs.',
                )
            )
    return found


def _section_findings(profile: Profile) -> list[Finding]:
    found: list[Finding] = []

    def add(code: str, severity: str, path: str, where: str, message: str) -> None:
        found.append(Finding(code, severity, path, where, message))

    if not profile.experience:
        add(
            "missing_experience",
            "high",
            "experience",
            "Experience",
            "No experience section: list your roles, most recent first.",
        )
    if not profile.skills:
        add(
            "missing_skills",
            "medium",
            "skills",
            "Skills",
            "No skills section: list the tools and methods you use, as recruiters search for them.",
        )
    if not profile.summary:
        add(
            "missing_summary",
            "medium",
            "summary",
            "Summary",
            "No summary: open with two or three sentences on who you are and what you do best.",
        )
    elif _words(profile.summary) > LONG_SUMMARY_WORDS:
        add(
            "long_summary",
            "low",
            "summary",
            "Summary",
            f"{_words(profile.summary)} words: keep the summary to two or three sentences.",
        )
    if not profile.headline:
        add(
            "missing_headline",
            "low",
            "headline",
            "Headline",
            "No headline: add the title you are aiming for.",
        )
    if not profile.email and not profile.phone:
        add(
            "missing_contact",
            "medium",
            "email",
            "Contact details",
            "No email or phone: add a way to reach you.",
        )
    if not profile.education:
        add(
            "missing_education",
            "low",
            "education",
            "Education",
            "No education section: add degrees, or courses and certifications.",
        )
    unproven = unproven_skills(profile)
    if unproven:
        add(
            "unproven_skills",
            "medium",
            "skills",
            "Skills",
            f"Listed but never shown in your experience: {listing(unproven[:8])}. "
            "Add a bullet that shows each at work, or drop it.",
        )
    total = resume_words(profile)
    if total > LONG_RESUME_WORDS:
        add(
            "too_long",
            "medium",
            "",
            "Whole résumé",
            f"About {total} words, likely more than two pages: cut older roles to their "
            "best bullets.",
        )
    return found


def unproven_skills(profile: Profile) -> list[str]:
    """Listed skills that the headline, summary, titles and bullets never mention."""
    texts = "\n".join(profile.texts())
    shown = {skill_key(skill) for skill in find_skills(texts)}
    lowered = texts.casefold()
    return [
        skill
        for skill in profile.skills
        if skill_key(skill) not in shown and skill.casefold() not in lowered
    ]


def resume_words(profile: Profile) -> int:
    """Words of text in the résumé (contact details aside)."""
    texts = [*profile.texts(), *profile.skills]
    texts += [f"{role.company} {role.start} {role.end}" for role in profile.experience]
    texts += [f"{d.degree} {d.institution} {d.year}" for d in profile.education]
    return sum(_words(text) for text in texts)


def analyze(profile: Profile) -> tuple[list[Finding], dict[str, int], int]:
    """The findings, most severe first (in résumé order among equals), the résumé's
    statistics, and a score out of 100."""
    findings = _section_findings(profile) + _bullet_findings(profile)
    findings.sort(key=lambda f: SEVERITIES.index(f.severity))
    bullets = [b for role in profile.experience for b in role.bullets]
    stats = {
        "roles": len(profile.experience),
        "bullets": len(bullets),
        "bullets_with_figures": sum(1 for b in bullets if has_figure(b)),
        "weak_openers": sum(1 for b in bullets if weak_opener(b)),
        "words": resume_words(profile),
    }
    score = max(0, 100 - sum(_PENALTY[f.severity] for f in findings))
    return findings, stats, score


_BULLET_CODES = ("weak_verb", "first_person", "no_figure", "long_bullet", "short_bullet")


def bullets_to_rewrite(profile: Profile, findings: Sequence[Finding]) -> list[tuple[str, str]]:
    """``(path, bullet)`` of the bullets worth a suggestion: the most findings first (in
    résumé order among equals), at most :data:`MAX_REWRITES`."""
    counts: dict[str, int] = {}
    for finding in findings:
        if finding.code in _BULLET_CODES:
            counts[finding.path] = counts.get(finding.path, 0) + 1
    chosen: list[tuple[int, int, str, str]] = []
    order = 0
    for i, role in enumerate(profile.experience):
        for j, bullet in enumerate(role.bullets):
            path = f"experience[{i}].bullets[{j}]"
            if path in counts:
                chosen.append((-counts[path], order, path, bullet))
            order += 1
    return [(path, bullet) for *_, path, bullet in sorted(chosen)[:MAX_REWRITES]]


def bullet_advice(bullet: str) -> str:
    """The template suggestion for a bullet: what to change, in a sentence or three."""
    advice: list[str] = []
    opener = weak_opener(bullet)
    if opener:
        verbs = " or ".join(strong_verbs(opener))
        advice.append(f'Open with a strong verb such as {verbs} instead of "{opener}".')
    elif bullet.split()[0].lower() == "i":
        advice.append('Drop the "I" and open with the verb.')
    if not has_figure(bullet):
        advice.append("Add a figure: how much, how many or how often (time, money, users, %).")
    words = _words(bullet)
    if words > LONG_BULLET_WORDS:
        advice.append("Cut it to the action and its result.")
    elif words < SHORT_BULLET_WORDS:
        advice.append("Say what you did, what changed and by how much.")
    return " ".join(advice) or "Lead with the result."


def bullet_messages(bullet: str, profile: Profile) -> tuple[ChatMessage, ...]:
    ask = (
        "Rewrite this résumé bullet so that it opens with a strong action verb and states "
        "the result. Keep every fact and figure. Invent no figure: where one would help, "
        "write N in its place (for example 'by N%'). Mention no skill or technology that "
        "is not in the bullet or in the candidate's skills. Answer with the rewritten "
        "bullet only."
    )
    facts = f"Bullet: {bullet}\nCandidate's skills: {listing(evidenced_skills(profile))}"
    return (
        system("You improve the bullets of a résumé."),
        ChatMessage("user", f"{ask}\n\n{facts}"),
    )


def acceptable_rewrite(rewrite: str, bullet: str, profile: Profile) -> bool:
    """Whether a model's rewrite keeps to the facts: no skill the résumé never shows, no
    figure the bullet does not have."""
    allowed = {skill_key(skill) for skill in (*evidenced_skills(profile), *find_skills(bullet))}
    if any(skill_key(skill) not in allowed for skill in find_skills(rewrite)):
        return False
    return set(_DIGITS.findall(rewrite)) <= set(_DIGITS.findall(bullet))


def overview_template(score: int, findings: Sequence[Finding], stats: Mapping[str, int]) -> str:
    """The template overview: the score, then the (up to three) first things to fix."""
    if not findings:
        return (
            f"Your résumé scores {score}/100: strong verbs, figures and every section in "
            "place. Keep each new bullet to an action and a measurable result."
        )
    count = len(findings)
    lines = [
        f"Your résumé scores {score}/100 with {count} suggestion{'s' if count != 1 else ''} "
        f"across {stats['roles']} role{'s' if stats['roles'] != 1 else ''} and "
        f"{stats['bullets']} bullet{'s' if stats['bullets'] != 1 else ''}. Start with these:"
    ]
    lines += [f"{n}. {f.where}: {f.message}" for n, f in enumerate(findings[:3], start=1)]
    return "\n".join(lines)


def overview_messages(
    score: int, findings: Sequence[Finding], stats: Mapping[str, int]
) -> tuple[ChatMessage, ...]:
    ask = (
        "Write an overview of three to five sentences for the résumé's owner, in the second "
        "person: how it reads now and the three things to fix first, most important first. "
        "Be specific and encouraging; use only the findings below."
    )
    facts = [
        f"Score: {score}/100",
        f"Roles: {stats['roles']}, bullets: {stats['bullets']}, with figures: "
        f"{stats['bullets_with_figures']}, weak openers: {stats['weak_openers']}, "
        f"words: {stats['words']}",
        "Findings, most important first:",
        *(f"- {f.where}: {f.message}" for f in findings[:10]),
    ]
    return (
        system("You review résumés and tell their owners what to improve."),
        ChatMessage("user", ask + "\n\n" + "\n".join(facts)),
    )


def _findings(ctx: StepContext) -> tuple[list[Finding], dict[str, int], int]:
    analysis = ctx.checkpoint(ANALYZE_RESUME)
    findings = [Finding.from_dict(f) for f in analysis["findings"]]
    stats = {key: int(value) for key, value in analysis["stats"].items()}
    return findings, stats, int(analysis["score"])


async def _analyze_resume(ctx: StepContext) -> dict[str, Any]:
    findings, stats, score = analyze(profile_of(ctx, LOAD_RESUME))
    return {"findings": [f.to_dict() for f in findings], "stats": stats, "score": score}


def _write_suggestions(provider: ChatProvider) -> Handler:
    async def handler(ctx: StepContext) -> dict[str, Any]:
        profile = profile_of(ctx, LOAD_RESUME)
        findings, stats, score = _findings(ctx)
        prose = Prose.for_step(provider, ctx)
        chosen = bullets_to_rewrite(profile, findings)
        rewrites = []
        for n, (path, bullet) in enumerate(chosen):
            await ctx.report_progress(
                n * 80 // len(chosen), f"Writing suggestion {n + 1} of {len(chosen)}..."
            )
            advice = bullet_advice(bullet)

            async def offline(advice: str = advice) -> str:
                return advice

            answer = await prose.ask(
                BULLET_PROMPT, bullet_messages(bullet, profile), offline, max_tokens=150
            )
            if not acceptable_rewrite(answer, bullet, profile):
                answer = advice
            rewrites.append({"path": path, "original": bullet, "suggestion": answer})
        await ctx.report_progress(80, "Writing the overview...")

        async def overview_offline() -> str:
            return overview_template(score, findings, stats)

        overview = await prose.ask(
            OVERVIEW_PROMPT,
            overview_messages(score, findings, stats),
            overview_offline,
            max_tokens=400,
        )
        return {"overview": overview, "rewrites": rewrites}

    return handler


def render_report(
    profile: Profile,
    score: int,
    stats: Mapping[str, int],
    findings: Sequence[Finding],
    overview: str,
    rewrites: Sequence[Mapping[str, Any]],
) -> str:
    """The review as Markdown: score and statistics, overview, suggested rewrites, then
    every finding by severity. Empty sections are left out."""
    lines = [
        f"# Résumé review: {profile.name}",
        "",
        f"**Score:** {score}/100 \u00b7 {stats['roles']} roles \u00b7 {stats['bullets']} "
        f"bullets ({stats['bullets_with_figures']} with figures) \u00b7 {stats['words']} words",
        "",
        "## Overview",
        "",
        overview,
        "",
    ]
    if rewrites:
        lines += ["## Suggested rewrites", ""]
        where = {f.path: f.where for f in findings}
        for rewrite in rewrites:
            lines += [
                f"### {where.get(str(rewrite['path']), rewrite['path'])}",
                "",
                f"> {rewrite['original']}",
                "",
                str(rewrite["suggestion"]),
                "",
            ]
    for severity in SEVERITIES:
        of_severity = [f for f in findings if f.severity == severity]
        if of_severity:
            lines += [f"## {severity.capitalize()} priority", ""]
            lines += [f"- **{f.where}**: {f.message}" for f in of_severity]
            lines.append("")
    return "\n".join(lines)


async def _render_report(ctx: StepContext) -> dict[str, Any]:
    findings, stats, score = _findings(ctx)
    written = ctx.checkpoint(WRITE_SUGGESTIONS)
    overview = str(written["overview"])
    rewrites = [dict(r) for r in written["rewrites"]]
    report = render_report(profile_of(ctx, LOAD_RESUME), score, stats, findings, overview, rewrites)
    # The last step's output is the job's result.
    return {
        "score": score,
        "stats": stats,
        "findings": [f.to_dict() for f in findings],
        "overview": overview,
        "rewrites": rewrites,
        "report_markdown": report,
    }


def handlers(provider: ChatProvider) -> dict[str, Handler]:
    return {
        LOAD_RESUME: load_resume,
        ANALYZE_RESUME: _analyze_resume,
        WRITE_SUGGESTIONS: _write_suggestions(provider),
        RENDER_REPORT: _render_report,
    }
