"""The ``skill_gap_analysis`` job type: a target role, the skills it needs that the résumé
does not show, and a learning plan.

Steps (see ``spec.py``)::

    load_resume          the résumé, normalised as cv_tailoring does
    map_role_skills      the target role's core and nice-to-have skills, from the built-in
                         role map (:data:`ROLES`, in the skills vocabulary's names) plus the
                         input's ``target_skills``
    find_gaps            which the résumé shows in its experience, which it only lists, which
                         are missing; a coverage score; a week-by-week schedule
    write_learning_plan  through the provider: the plan in prose, following the schedule
    render_report        the result, with a Markdown report

Everything but the prose is deterministic; with the ``local`` provider so is the prose.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobtypes.skill_gap_analysis.spec import (
    FIND_GAPS,
    LOAD_RESUME,
    MAP_ROLE_SKILLS,
    RENDER_REPORT,
    WRITE_LEARNING_PLAN,
)
from resume import Profile, canonical_skill, find_skills
from resume.profile import clean, unique_skills
from resume.steps import load_resume, profile_of
from resume.vocabulary import skill_key
from stepkit import (
    ChatMessage,
    ChatProvider,
    Handler,
    PermanentStepError,
    Prose,
    StepContext,
    listing,
    system,
)

#: Prompt id with its version; bump the version whenever the prompt's wording changes.
PLAN_PROMPT = "skill_gap_plan@1"

DEFAULT_HOURS_PER_WEEK = 6
#: Hours of study the plan budgets per gap, by kind.
HOURS = {"core": 40, "nice_to_have": 20, "strengthen": 8}
MAX_PLAN_ITEMS = 8


@dataclass(frozen=True, slots=True)
class RoleSkills:
    """A role's skills. Each requirement lists alternatives, any of which meets it (the
    first is the one to learn); names are the vocabulary's canonical names."""

    name: str
    aliases: tuple[str, ...]
    core: tuple[tuple[str, ...], ...]
    nice_to_have: tuple[tuple[str, ...], ...]


def _reqs(text: str) -> tuple[tuple[str, ...], ...]:
    """``"Python|Go; SQL"`` as ``(("Python", "Go"), ("SQL",))``."""
    return tuple(
        tuple(alt.strip() for alt in req.split("|")) for req in text.split(";") if req.strip()
    )


#: A SQL database on the résumé shows SQL.
_SQL = "SQL|PostgreSQL|MySQL|Microsoft SQL Server|Oracle Database|SQLite|MariaDB"


def _role(name: str, aliases: str, core: str, nice: str) -> RoleSkills:
    return RoleSkills(name, tuple(a.strip() for a in aliases.split(",")), _reqs(core), _reqs(nice))


#: The built-in role map, most specific first: a title takes the first role whose alias it
#: contains, so "Full-Stack Web Developer" is full-stack, not frontend.
ROLES: tuple[RoleSkills, ...] = (
    _role(
        "Engineering Manager",
        "engineering manager, head of engineering, engineering lead, director of engineering",
        "People Management; Technical Leadership; Mentoring; Agile; Stakeholder Management; "
        "System Design; Recruiting",
        "OKRs; Incident Management; Budgeting; Code Review; Change Management",
    ),
    _role(
        "Full-Stack Engineer",
        "full stack, fullstack",
        "JavaScript; TypeScript; React|Angular|Vue.js; Node.js|Python|Java|Ruby|Go; "
        + _SQL
        + "; REST; Git",
        "Docker; PostgreSQL; AWS|Google Cloud|Azure; CI/CD; GraphQL",
    ),
    _role(
        "Machine Learning Engineer",
        "machine learning engineer, ml engineer, mlops engineer, ai engineer",
        "Python; Machine Learning; Deep Learning; PyTorch|TensorFlow; MLOps; Docker; " + _SQL,
        "Kubernetes; Large Language Models; MLflow; AWS|Google Cloud|Azure; Feature Engineering",
    ),
    _role(
        "Data Engineer",
        "data engineer, analytics engineer, etl developer, big data engineer",
        "Python; " + _SQL + "; ETL; Apache Airflow; Apache Spark; Data Modeling; "
        "Snowflake|BigQuery|Redshift|Databricks",
        "Kafka; dbt; AWS|Google Cloud|Azure; Docker; Data Warehousing; Terraform",
    ),
    _role(
        "Data Scientist",
        "data scientist, data science",
        "Python; "
        + _SQL
        + "; Statistics; Machine Learning; pandas; scikit-learn; Data Visualization",
        "A/B Testing; Deep Learning; PyTorch|TensorFlow; Jupyter; Apache Spark",
    ),
    _role(
        "Data Analyst",
        "data analyst, business intelligence, bi analyst, bi developer, business analyst",
        _SQL + "; Excel; Data Analysis; Data Visualization; Tableau|Power BI|Looker; Statistics",
        "Python; A/B Testing; Google Analytics; pandas",
    ),
    _role(
        "DevOps Engineer",
        "devops, site reliability, sre, platform engineer, infrastructure engineer, cloud engineer",
        "Linux; Docker; Kubernetes; Terraform; CI/CD; AWS|Google Cloud|Azure; Bash; Git",
        "Ansible; Helm; Prometheus; Grafana; Python|Go; Incident Management; Observability",
    ),
    _role(
        "Security Engineer",
        "security engineer, security analyst, appsec, application security, cybersecurity, "
        "cyber security, penetration tester",
        "Application Security; OWASP; Threat Modeling; Penetration Testing; Encryption; IAM; "
        "Linux; Python",
        "SIEM; Zero Trust; AWS|Google Cloud|Azure; DevSecOps; ISO 27001; SOC 2",
    ),
    _role(
        "Mobile Developer",
        "mobile, ios, android, flutter, react native",
        "Swift|Kotlin|Dart; iOS|Android; SwiftUI|Jetpack Compose|Flutter|React Native; REST; "
        "Git; Unit Testing",
        "Firebase; CI/CD; GraphQL; UX Design",
    ),
    _role(
        "QA Engineer",
        "qa, quality assurance, test engineer, sdet, test automation",
        "Test Automation; Selenium|Playwright|Cypress; Unit Testing; Integration Testing; "
        "Quality Assurance; Git; Python|Java|JavaScript",
        "CI/CD; Load Testing; BDD; Jira",
    ),
    _role(
        "Frontend Engineer",
        "frontend, front end, web developer, ui engineer, ui developer",
        "JavaScript; TypeScript; HTML; CSS; React|Angular|Vue.js; Git; Unit Testing",
        "Next.js; Web Accessibility; Responsive Design; Jest|Cypress; GraphQL; Figma",
    ),
    _role(
        "Backend Engineer",
        "backend, back end, server side, api engineer, api developer",
        "Python|Go|Java|C#|Node.js|Ruby|Kotlin; " + _SQL + "; PostgreSQL|MySQL; REST; Docker; Git; "
        "Unit Testing; CI/CD",
        "Kubernetes; Redis; Kafka; gRPC; AWS|Google Cloud|Azure; System Design; Microservices",
    ),
    _role(
        "Product Manager",
        "product manager, product owner, product management",
        "Product Management; Product Roadmaps; Stakeholder Management; User Research; Agile; "
        "A/B Testing; Requirements Gathering",
        _SQL + "; Jira; OKRs; Data Analysis; Figma",
    ),
    _role(
        "UX Designer",
        "ux, ui designer, product designer, interaction designer, user experience",
        "UX Design; UI Design; User Research; Figma; Prototyping; Wireframing",
        "Design Systems; Web Accessibility; HTML; CSS; A/B Testing",
    ),
    _role(
        "Software Engineer",
        "software engineer, software developer, developer, programmer, engineer",
        "Python|Java|Go|C#|C++|JavaScript|TypeScript; Git; " + _SQL + "; Unit Testing; Code Review",
        "Docker; CI/CD; REST; Agile; System Design",
    ),
)


def _title_key(text: str) -> str:
    return " ".join(re.sub(r"[\W_]+", " ", text.casefold()).split())


def find_role(title: str) -> RoleSkills | None:
    """The first role of :data:`ROLES` with an alias in ``title`` (as whole words)."""
    key = f" {_title_key(title)} "
    for role in ROLES:
        if any(f" {_title_key(alias)} " in key for alias in role.aliases):
            return role
    return None


def role_skills(title: str, target_skills: Sequence[str]) -> RoleSkills:
    """The skills of the target role: the role map's, with ``target_skills`` added to the
    core. An unknown role needs ``target_skills``; without them it is a permanent error."""
    extra = unique_skills(target_skills)
    known = find_role(title)
    if known is None and not extra:
        # The message names the known roles, never the title the user wrote.
        raise PermanentStepError(
            "UNKNOWN_ROLE",
            "no skill map for the target role; give target_skills, or a title naming one of: "
            + ", ".join(role.name for role in ROLES),
        )
    name = known.name if known else clean(title)
    core = list(known.core if known else ())
    have = {skill_key(alt) for req in core for alt in req}
    core += [(skill,) for skill in extra if skill_key(skill) not in have]
    nice = tuple(
        req
        for req in (known.nice_to_have if known else ())
        if not any(skill_key(alt) in {skill_key(s) for s in extra} for alt in req)
    )
    return RoleSkills(name, known.aliases if known else (), tuple(core), nice)


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where the résumé shows skills: in its experience (headline, summary, titles,
    bullets), or only in its skills list."""

    shown: frozenset[str]
    listed: frozenset[str]
    text: str

    @classmethod
    def of(cls, profile: Profile) -> Evidence:
        text = "\n".join(profile.texts())
        return cls(
            shown=frozenset(skill_key(s) for s in find_skills(text)),
            listed=frozenset(skill_key(s) for s in profile.skills),
            text=text.casefold(),
        )

    def where(self, skill: str) -> str:
        """``"experience"``, ``"skills list"`` or ``""`` (not on the résumé)."""
        key = skill_key(skill)
        # A skill outside the vocabulary is shown if its name is in the text.
        if key in self.shown or (canonical_skill(skill) is None and skill.casefold() in self.text):
            return "experience"
        return "skills list" if key in self.listed else ""


def find_gaps(role: RoleSkills, profile: Profile) -> dict[str, Any]:
    """Matched skills (with where they show), missing core and nice-to-have skills, listed
    skills the experience never shows, and a coverage score out of 100 (core 85, nice to
    have 15; a skill only listed counts half)."""
    evidence = Evidence.of(profile)
    matched: list[dict[str, str]] = []
    missing: dict[str, list[dict[str, Any]]] = {"core": [], "nice_to_have": []}
    points = {"core": 0.0, "nice_to_have": 0.0}
    for kind, reqs in (("core", role.core), ("nice_to_have", role.nice_to_have)):
        for req in reqs:
            found = [(alt, evidence.where(alt)) for alt in req if evidence.where(alt)]
            shown = [alt for alt, where in found if where == "experience"]
            if shown:
                matched.append({"skill": shown[0], "kind": kind, "evidence": "experience"})
                points[kind] += 1
            elif found:
                matched.append({"skill": found[0][0], "kind": kind, "evidence": "skills list"})
                points[kind] += 0.5
            else:
                missing[kind].append({"skill": req[0], "alternatives": list(req[1:])})
    core_share = points["core"] / len(role.core) if role.core else 1.0
    if role.nice_to_have:
        score = 85 * core_share + 15 * points["nice_to_have"] / len(role.nice_to_have)
    else:
        score = 100 * core_share
    return {
        "matched": matched,
        "missing_core": missing["core"],
        "missing_nice_to_have": missing["nice_to_have"],
        "to_strengthen": [m["skill"] for m in matched if m["evidence"] == "skills list"],
        "coverage_score": math.floor(score + 0.5),
    }


def _milestone(kind: str, skill: str) -> str:
    if kind == "core":
        return (
            f"Build a small project that uses {skill}, then add a résumé bullet saying what "
            "it does and how well."
        )
    if kind == "nice_to_have":
        return f"Learn the basics of {skill} and use it once, at work or in a project."
    return f"You list {skill}: add a bullet that shows it at work, with a result."


def learning_plan(gaps: Mapping[str, Any], hours_per_week: int) -> list[dict[str, Any]]:
    """Core gaps first, then nice-to-haves, then listed skills to prove, each budgeted
    :data:`HOURS` hours and given whole weeks back to back at ``hours_per_week``; at most
    :data:`MAX_PLAN_ITEMS` items."""
    todo = [("core", str(g["skill"])) for g in gaps["missing_core"]]
    todo += [("nice_to_have", str(g["skill"])) for g in gaps["missing_nice_to_have"]]
    todo += [("strengthen", str(skill)) for skill in gaps["to_strengthen"]]
    plan: list[dict[str, Any]] = []
    last_week = 0
    for kind, skill in todo[:MAX_PLAN_ITEMS]:
        weeks = math.ceil(HOURS[kind] / hours_per_week)
        plan.append(
            {
                "skill": skill,
                "kind": kind,
                "hours": HOURS[kind],
                "start_week": last_week + 1,
                "end_week": last_week + weeks,
                "milestone": _milestone(kind, skill),
            }
        )
        last_week += weeks
    return plan


_KIND_LABEL = {"core": "core", "nice_to_have": "nice to have", "strengthen": "prove it"}


def _weeks(item: Mapping[str, Any]) -> str:
    start, end = int(item["start_week"]), int(item["end_week"])
    return f"Week {start}" if start == end else f"Weeks {start}\u2013{end}"


def schedule_lines(plan: Sequence[Mapping[str, Any]]) -> list[str]:
    return [
        f"{_weeks(item)}: {item['skill']} ({_KIND_LABEL[str(item['kind'])]}). {item['milestone']}"
        for item in plan
    ]


def _matched_names(gaps: Mapping[str, Any], kind: str) -> list[str]:
    return [str(m["skill"]) for m in gaps["matched"] if m["kind"] == kind]


def plan_template(
    role: str, core_total: int, gaps: Mapping[str, Any], plan: Sequence[Mapping[str, Any]],
    hours_per_week: int,
) -> str:  # fmt: skip
    """The template learning plan: where the résumé stands, then the schedule."""
    shown = _matched_names(gaps, "core")
    standing = (
        f"You already show {len(shown)} of the {core_total} core skills of a {role}: "
        f"{listing(shown)}."
        if shown
        else f"None of the {core_total} core skills of a {role} shows on your résumé yet."
    )
    if not plan:
        return (
            f"{standing} Nothing is missing: keep each skill visible with a recent bullet "
            "that shows it at work."
        )
    weeks = max(int(item["end_week"]) for item in plan)
    intro = (
        f"A plan towards {role} at {hours_per_week} hours a week, about {weeks} week"
        f"{'s' if weeks != 1 else ''} in all."
    )
    return "\n\n".join([intro, standing, "\n".join(schedule_lines(plan))])


def plan_messages(
    role: str, gaps: Mapping[str, Any], plan: Sequence[Mapping[str, Any]], hours_per_week: int
) -> tuple[ChatMessage, ...]:
    ask = (
        "Write a learning plan for the candidate, in the second person, that follows the "
        "schedule below week by week: for each skill, what to learn first and how the "
        "milestone proves it. Never say the candidate already has a skill that is listed "
        "as missing. Keep it under 300 words."
    )
    facts = [
        f"Target role: {role}",
        f"Hours a week: {hours_per_week}",
        f"Core skills the résumé shows: {listing(_matched_names(gaps, 'core'))}",
        f"Nice-to-have skills it shows: {listing(_matched_names(gaps, 'nice_to_have'))}",
        f"Missing core skills: {listing([str(g['skill']) for g in gaps['missing_core']])}",
        "Missing nice-to-have skills: "
        f"{listing([str(g['skill']) for g in gaps['missing_nice_to_have']])}",
        f"Listed but never shown at work: {listing(list(gaps['to_strengthen']))}",
        "Schedule:",
        *schedule_lines(plan),
    ]
    return (
        system("You are a career coach who writes practical learning plans."),
        ChatMessage("user", ask + "\n\n" + "\n".join(facts)),
    )


def _role_of(ctx: StepContext) -> RoleSkills:
    data = ctx.checkpoint(MAP_ROLE_SKILLS)["role"]
    return RoleSkills(
        str(data["name"]),
        (),
        tuple(tuple(str(alt) for alt in req) for req in data["core"]),
        tuple(tuple(str(alt) for alt in req) for req in data["nice_to_have"]),
    )


def _hours_per_week(ctx: StepContext) -> int:
    return max(1, round(float(ctx.input.get("hours_per_week") or DEFAULT_HOURS_PER_WEEK)))


async def _map_role_skills(ctx: StepContext) -> dict[str, Any]:
    target_skills = [s for s in ctx.input.get("target_skills") or () if isinstance(s, str)]
    role = role_skills(str(ctx.input["target_role"]), target_skills)
    return {
        "role": {
            "name": role.name,
            "core": [list(req) for req in role.core],
            "nice_to_have": [list(req) for req in role.nice_to_have],
        }
    }


async def _find_gaps(ctx: StepContext) -> dict[str, Any]:
    gaps = find_gaps(_role_of(ctx), profile_of(ctx, LOAD_RESUME))
    await ctx.report_progress(60, "Scheduling what to learn first...")
    return {**gaps, "learning_plan": learning_plan(gaps, _hours_per_week(ctx))}


def _write_learning_plan(provider: ChatProvider) -> Handler:
    async def handler(ctx: StepContext) -> dict[str, Any]:
        role, gaps = _role_of(ctx), ctx.checkpoint(FIND_GAPS)
        plan, hours = list(gaps["learning_plan"]), _hours_per_week(ctx)

        async def offline() -> str:
            return plan_template(role.name, len(role.core), gaps, plan, hours)

        text = await Prose.for_step(provider, ctx).ask(
            PLAN_PROMPT, plan_messages(role.name, gaps, plan, hours), offline, max_tokens=700
        )
        return {"plan_text": text}

    return handler


def render_report(
    name: str, role: str, gaps: Mapping[str, Any], plan: Sequence[Mapping[str, Any]],
    plan_text: str,
) -> str:  # fmt: skip
    """The analysis as Markdown: coverage, skills shown, gaps, the plan's prose and its
    schedule. Empty sections are left out."""
    lines = [
        f"# Skill gaps: {name} \u2192 {role}",
        "",
        f"**Coverage:** {int(gaps['coverage_score'])}/100",
        "",
    ]
    if gaps["matched"]:
        lines += ["## Skills you show", ""]
        lines += [
            f"- {m['skill']} ({_KIND_LABEL[str(m['kind'])]}, in your {m['evidence']})"
            for m in gaps["matched"]
        ]
        lines.append("")
    missing = [(g, "core") for g in gaps["missing_core"]]
    missing += [(g, "nice to have") for g in gaps["missing_nice_to_have"]]
    if missing:
        lines += ["## Missing skills", ""]
        for gap, label in missing:
            alternatives = list(gap["alternatives"])
            alt = f"; or {', '.join(alternatives)}" if alternatives else ""
            lines.append(f"- {gap['skill']} ({label}{alt})")
        lines.append("")
    lines += ["## Learning plan", "", plan_text, ""]
    if plan:
        lines += ["| weeks | skill | hours | milestone |", "|---|---|---|---|"]
        lines += [
            f"| {_weeks(item)} | {item['skill']} | {int(item['hours'])} | {item['milestone']} |"
            for item in plan
        ]
        lines.append("")
    return "\n".join(lines)


async def _render_report(ctx: StepContext) -> dict[str, Any]:
    role, gaps = _role_of(ctx), ctx.checkpoint(FIND_GAPS)
    plan = [dict(item) for item in gaps["learning_plan"]]
    plan_text = str(ctx.checkpoint(WRITE_LEARNING_PLAN)["plan_text"])
    report = render_report(profile_of(ctx, LOAD_RESUME).name, role.name, gaps, plan, plan_text)
    # The last step's output is the job's result.
    return {
        "target_role": role.name,
        "coverage_score": int(gaps["coverage_score"]),
        "matched_skills": [str(m["skill"]) for m in gaps["matched"]],
        "missing_skills": [str(g["skill"]) for g in gaps["missing_core"]],
        "missing_nice_to_have": [str(g["skill"]) for g in gaps["missing_nice_to_have"]],
        "to_strengthen": [str(s) for s in gaps["to_strengthen"]],
        "learning_plan": plan,
        "plan_text": plan_text,
        "report_markdown": report,
    }


def handlers(provider: ChatProvider) -> dict[str, Handler]:
    return {
        LOAD_RESUME: load_resume,
        MAP_ROLE_SKILLS: _map_role_skills,
        FIND_GAPS: _find_gaps,
        WRITE_LEARNING_PLAN: _write_learning_plan(provider),
        RENDER_REPORT: _render_report,
    }
