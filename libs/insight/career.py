"""A career field's market, its role ladder, and a person's skills held against it: pure.

:data:`DOMAINS` is the built-in market map: for each field, the skills employers ask for
most (each a requirement whose alternatives also meet it: any of Snowflake, BigQuery,
Redshift or Databricks is "a cloud warehouse"), the skills on the rise, what drives the
demand, and its ladder of roles. Every skill is a canonical name of the résumé engine's
vocabulary (``resume.VOCABULARY``), so the user's "k8s" meets "Kubernetes" and "postgres"
meets "SQL|PostgreSQL".

- :func:`find_domain` reads a field ("Data Engineering", "AI", "cloud") or a job title;
- :func:`read_market` is the field's market view;
- :func:`match_skills` holds a person's skills against it: matched, gaps in demand order,
  rising skills, and the skills that carry over to other fields;
- :func:`place_on_ladder` finds the current role's rung and the next ones (or the way in,
  for someone changing fields);
- :func:`next_steps` turns the three into a short, ordered list of things to do.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from resume.profile import unique_skills
from resume.vocabulary import find_skills, skill_key


@dataclass(frozen=True, slots=True)
class Domain:
    """One career field. Requirements list alternatives, the first the one to learn."""

    name: str
    #: Words that name the field, or its job titles, matched as whole words.
    aliases: tuple[str, ...]
    in_demand: tuple[tuple[str, ...], ...]
    emerging: tuple[tuple[str, ...], ...]
    drivers: str
    #: Individual-contributor rungs, entry first.
    ladder: tuple[str, ...]
    #: The management rungs beside the ladder's upper half (may be empty).
    management: tuple[str, ...]


def _reqs(text: str) -> tuple[tuple[str, ...], ...]:
    """``"Python|Go; SQL"`` as ``(("Python", "Go"), ("SQL",))``."""
    return tuple(
        tuple(alt.strip() for alt in req.split("|")) for req in text.split(";") if req.strip()
    )


def _domain(
    name: str, aliases: str, in_demand: str, emerging: str, drivers: str, ladder: str,
    management: str = "",
) -> Domain:  # fmt: skip
    return Domain(
        name,
        tuple(a.strip() for a in aliases.split(",") if a.strip()),
        _reqs(in_demand),
        _reqs(emerging),
        drivers,
        tuple(r.strip() for r in ladder.split(",") if r.strip()),
        tuple(r.strip() for r in management.split(",") if r.strip()),
    )


_CLOUD = "AWS|Google Cloud|Azure"

#: The built-in market map, most specific first: a text takes the first field whose alias
#: it contains ("data engineer" is data engineering, not software engineering).
DOMAINS: tuple[Domain, ...] = (
    _domain(
        "Data Engineering",
        "data engineering, data engineer, analytics engineering, analytics engineer, "
        "data platform, etl, big data",
        "Python; SQL|PostgreSQL; Apache Spark|PySpark; Apache Airflow|Dagster|Prefect; dbt; "
        "Snowflake|BigQuery|Redshift|Databricks; Data Modeling; Kafka; " + _CLOUD + "; ETL",
        "Apache Flink; Vector Databases; Terraform; Data Warehousing",
        "companies moving their data to cloud warehouses, real-time products that need "
        "streaming pipelines, and AI projects that need clean, governed data",
        "Junior Data Engineer, Data Engineer, Senior Data Engineer, Staff Data Engineer, "
        "Principal Data Engineer",
        "Data Engineering Manager, Head of Data",
    ),
    _domain(
        "Data Science and Machine Learning",
        "data science, data scientist, machine learning, ml, ml engineer, machine learning "
        "engineer, ai, artificial intelligence, deep learning, mlops",
        "Python; Machine Learning; SQL|PostgreSQL; Statistics; PyTorch|TensorFlow; "
        "scikit-learn; pandas; Deep Learning; MLOps|MLflow; Large Language Models",
        "Generative AI; Retrieval-Augmented Generation; Vector Databases; Prompt Engineering; "
        "Hugging Face",
        "products built on language models, the move from experiments to models in "
        "production, and forecasting and personalisation in most industries",
        "Junior Data Scientist, Data Scientist, Senior Data Scientist, Staff Data Scientist, "
        "Principal Data Scientist",
        "Data Science Manager, Head of Data Science",
    ),
    _domain(
        "Data Analytics",
        "data analytics, data analysis, data analyst, analytics, business intelligence, bi, "
        "bi analyst, business analyst, reporting",
        "SQL|PostgreSQL|MySQL; Excel; Tableau|Power BI|Looker; Data Visualization; Statistics; "
        "Python|R; Data Analysis; A/B Testing; Google Analytics",
        "dbt; BigQuery|Snowflake; Forecasting; Generative AI",
        "every team being asked to decide from data, self-service dashboards, and "
        "experimentation in product and marketing",
        "Junior Data Analyst, Data Analyst, Senior Data Analyst, Lead Data Analyst, "
        "Principal Analyst",
        "Analytics Manager, Head of Analytics",
    ),
    _domain(
        "DevOps and Cloud",
        "devops, cloud, cloud engineering, cloud engineer, sre, site reliability, "
        "platform engineering, platform engineer, infrastructure, infrastructure engineer",
        "Linux; Docker; Kubernetes; Terraform|Pulumi; " + _CLOUD + "; CI/CD|GitHub Actions|"
        "GitLab CI|Jenkins; Python|Go|Bash; Prometheus|Grafana|Datadog; Git; Ansible",
        "Observability|OpenTelemetry; Argo CD; Service Mesh|Istio; DevSecOps",
        "cloud migrations, platform teams that give developers self-service, and "
        "reliability and cost targets for systems that must not go down",
        "Junior DevOps Engineer, DevOps Engineer, Senior DevOps Engineer, Staff Platform "
        "Engineer, Principal Cloud Architect",
        "Platform Engineering Manager, Head of Infrastructure",
    ),
    _domain(
        "Cybersecurity",
        "cybersecurity, cyber security, security, information security, infosec, appsec, "
        "application security, security engineer, security analyst, penetration tester",
        "Network Security; SIEM; IAM; Penetration Testing; Vulnerability Management; Linux; "
        "Python; " + _CLOUD + "; Incident Management; Threat Modeling",
        "Zero Trust; DevSecOps; Application Security; ISO 27001|SOC 2",
        "regulation and audits, attacks on cloud and identity systems, and security moving "
        "into the development process",
        "Security Analyst, Security Engineer, Senior Security Engineer, Security Architect, "
        "Principal Security Engineer",
        "Security Manager, Chief Information Security Officer",
    ),
    _domain(
        "Mobile Development",
        "mobile, mobile development, mobile developer, ios, android, app development, "
        "flutter, react native",
        "Swift|Kotlin; iOS|Android; SwiftUI|Jetpack Compose; React Native|Flutter; "
        "REST|GraphQL; Git; Unit Testing; CI/CD",
        "Firebase; Kotlin; Design Systems; Web Accessibility",
        "companies serving customers mobile-first, and cross-platform frameworks that let "
        "one team ship both apps",
        "Junior Mobile Developer, Mobile Developer, Senior Mobile Engineer, Staff Mobile "
        "Engineer, Principal Mobile Engineer",
        "Mobile Engineering Manager, Head of Mobile",
    ),
    _domain(
        "Frontend Development",
        "frontend, front end, front-end, frontend developer, web developer, web development, "
        "ui engineer, ui developer",
        "JavaScript; TypeScript; React|Vue.js|Angular; HTML; CSS; Next.js; Web Accessibility; "
        "Jest|Cypress|Playwright; Git; Responsive Design",
        "Svelte; Vite; Design Systems; GraphQL",
        "web apps replacing desktop software, accessibility law, and design systems shared "
        "across products",
        "Junior Frontend Developer, Frontend Developer, Senior Frontend Engineer, Staff "
        "Frontend Engineer, Principal Frontend Engineer",
        "Frontend Engineering Manager, Head of Engineering",
    ),
    _domain(
        "UX and Product Design",
        "ux, ui, design, product design, product designer, ux designer, ui designer, "
        "user experience, interaction design",
        "Figma; UX Design; UI Design; User Research; Prototyping; Wireframing; "
        "Design Systems; Web Accessibility; A/B Testing",
        "HTML|CSS; Data Analysis; Generative AI",
        "digital products competing on ease of use, accessibility requirements, and design "
        "systems that scale a product's look and behaviour",
        "Junior Product Designer, Product Designer, Senior Product Designer, Lead Product "
        "Designer, Principal Designer",
        "Design Manager, Head of Design",
    ),
    _domain(
        "Product Management",
        "product management, product manager, product owner, product",
        "Product Management; Product Roadmaps; Stakeholder Management; User Research; "
        "Agile|Scrum; A/B Testing; Data Analysis|SQL; Requirements Gathering; OKRs; Jira",
        "Artificial Intelligence; Growth Marketing; Figma",
        "software in every industry, products adding AI features, and teams that need to "
        "prove outcomes, not output",
        "Associate Product Manager, Product Manager, Senior Product Manager, Group Product "
        "Manager, Principal Product Manager",
        "Director of Product, VP of Product",
    ),
    _domain(
        "Digital Marketing",
        "marketing, digital marketing, growth, seo, content marketing, marketer, marketing manager",
        "SEO; Google Analytics; Content Marketing; Social Media Marketing; Email Marketing; "
        "Copywriting; SEM; Marketing Automation|HubSpot; A/B Testing; Data Analysis",
        "Growth Marketing; Generative AI; Prompt Engineering; CRM",
        "budgets moving online, measurable campaigns, and AI tools changing how content is made",
        "Marketing Coordinator, Digital Marketing Specialist, Marketing Manager, Senior "
        "Marketing Manager, Head of Marketing",
    ),
    _domain(
        "Project Management",
        "project management, project manager, program management, program manager, "
        "programme manager, delivery manager, pmo, scrum master",
        "Project Management; Agile|Scrum|Kanban; Stakeholder Management; Risk Management; "
        "Budgeting; Jira|Asana|Trello; PMP|PRINCE2; Change Management; Confluence",
        "OKRs; Program Management; Lean",
        "digital transformation programmes, regulated projects that need a paper trail, and "
        "teams spread across time zones",
        "Project Coordinator, Project Manager, Senior Project Manager, Program Manager, "
        "Portfolio Manager",
        "Head of PMO, Director of Delivery",
    ),
    _domain(
        "Sales",
        "sales, business development, account management, account executive, account "
        "manager, b2b sales, sales development",
        "B2B Sales; CRM|Salesforce|HubSpot; Negotiation; Account Management; "
        "Business Development; Public Speaking; Forecasting; Customer Success",
        "Marketing Automation; Data Analysis; Generative AI",
        "companies selling software and services by subscription, where keeping and growing "
        "accounts matters as much as winning them",
        "Sales Development Representative, Account Executive, Senior Account Executive, "
        "Enterprise Account Executive, Strategic Account Director",
        "Sales Manager, Head of Sales",
    ),
    _domain(
        "Finance",
        "finance, accounting, accountant, financial analysis, financial analyst, fp&a, "
        "controller, bookkeeping",
        "Excel; Financial Modeling; Accounting; Forecasting; Budgeting; SQL; "
        "Power BI|Tableau; P&L Management; Regulatory Compliance; SAP",
        "Python; Data Visualization; Data Analysis",
        "tighter cost control, regulation and reporting duties, and finance teams "
        "automating their reporting",
        "Junior Financial Analyst, Financial Analyst, Senior Financial Analyst, Finance "
        "Manager, Finance Director",
    ),
    _domain(
        "Software Engineering",
        "software engineering, software development, software engineer, software developer, "
        "backend, back end, back-end, backend engineer, programming, programmer, developer, "
        "engineer, coding",
        "Python|Java|Go|C#|TypeScript; SQL|PostgreSQL|MySQL; Git; REST|gRPC; Docker; "
        "Unit Testing; CI/CD; " + _CLOUD + "; System Design; Microservices",
        "Kubernetes; Large Language Models; OpenTelemetry; Rust",
        "every business running on software, cloud-native systems, and AI features built "
        "into existing products",
        "Junior Software Engineer, Software Engineer, Senior Software Engineer, Staff "
        "Engineer, Principal Engineer",
        "Engineering Manager, Director of Engineering",
    ),
)

#: Seniority words in a job title, by the ladder rung they point at.
_LEVELS: Final = (
    (0, ("junior", "jr", "graduate", "intern", "trainee", "apprentice", "entry", "associate",
         "assistant", "coordinator")),
    (2, ("senior", "sr")),
    (3, ("staff", "lead", "group", "enterprise")),
    (4, ("principal", "architect", "distinguished", "strategic")),
)  # fmt: skip
_MANAGEMENT: Final = ("manager", "head", "director", "vp", "chief", "cto", "ciso", "cfo")


def _words(text: str) -> str:
    return " " + " ".join(re.sub(r"[^\w&+#/]+", " ", text.casefold()).split()) + " "


def find_domain(text: str) -> Domain | None:
    """The first field of :data:`DOMAINS` with an alias in ``text`` (as whole words)."""
    key = _words(text)
    for domain in DOMAINS:
        if any(_words(alias) in key for alias in domain.aliases):
            return domain
    return None


def domain_named(name: str) -> Domain:
    """The field of :data:`DOMAINS` called exactly ``name`` (as a checkpoint names it)."""
    for domain in DOMAINS:
        if domain.name == name:
            return domain
    raise KeyError(name)


def domain_by_skills(skills: Sequence[str]) -> Domain | None:
    """The field whose in-demand skills ``skills`` meet most (at least two), if any."""
    keys = {skill_key(s) for s in unique_skills(skills)}
    best: tuple[int, Domain | None] = (1, None)
    for domain in DOMAINS:
        met = sum(1 for req in domain.in_demand if any(skill_key(a) in keys for a in req))
        if met > best[0]:
            best = (met, domain)
    return best[1]


def resolve_domain(
    domain: str, current_role: str = "", skills: Sequence[str] = ()
) -> Domain | None:
    """The field the user means: named by ``domain``; else the one the skills it names
    (``"Kubernetes"``) or the user's own skills point at; else the current role's."""
    return (
        find_domain(domain)
        or domain_by_skills(find_skills(domain))
        or domain_by_skills(skills)
        or (find_domain(current_role) if current_role else None)
    )


def read_market(domain: Domain) -> dict[str, Any]:
    """The field's market view: what employers ask for, in order, what is rising, and
    what drives the demand."""
    top = [req[0] for req in domain.in_demand[:5]]
    return {
        "domain": domain.name,
        "summary": (
            f"{domain.name} employers ask most often for {_listing(top)}. Demand is driven "
            f"by {domain.drivers}."
        ),
        "in_demand": [
            {"rank": rank, "skill": req[0], "alternatives": list(req[1:])}
            for rank, req in enumerate(domain.in_demand, 1)
        ],
        "emerging": [req[0] for req in domain.emerging],
        "drivers": domain.drivers,
    }


def match_skills(domain: Domain, skills: Sequence[str]) -> dict[str, Any]:
    """``skills`` against the field: the in-demand skills met (with the user's skill that
    meets each), the gaps in demand order, rising skills met and missing, the user's
    skills the field does not list (with the fields that do), and a coverage score out of
    100 (the share of in-demand skills met)."""
    mine = unique_skills(skills)
    by_key = {skill_key(s): s for s in mine}
    matched: list[dict[str, Any]] = []
    gaps: list[dict[str, Any]] = []
    used: set[str] = set()
    for rank, req in enumerate(domain.in_demand, 1):
        met = [by_key[skill_key(alt)] for alt in req if skill_key(alt) in by_key]
        if met:
            matched.append({"rank": rank, "skill": req[0], "with": met[0]})
            used.update(skill_key(s) for s in met)
        else:
            gaps.append({"rank": rank, "skill": req[0], "alternatives": list(req[1:])})
    rising_met: list[str] = []
    rising_gaps: list[str] = []
    for req in domain.emerging:
        met = [by_key[skill_key(alt)] for alt in req if skill_key(alt) in by_key]
        (rising_met if met else rising_gaps).append(req[0])
        used.update(skill_key(s) for s in met)
    transferable = [
        {"skill": skill, "wanted_in": _fields_wanting(skill, besides=domain)}
        for skill in mine
        if skill_key(skill) not in used
    ]
    share = len(matched) / len(domain.in_demand) if domain.in_demand else 0.0
    return {
        "matched": matched,
        "gaps": gaps,
        "emerging_matched": rising_met,
        "emerging_gaps": rising_gaps,
        "transferable": transferable,
        "coverage": math.floor(100 * share + 0.5),
    }


def _fields_wanting(skill: str, besides: Domain) -> list[str]:
    key = skill_key(skill)
    return [
        domain.name
        for domain in DOMAINS
        if domain is not besides
        and any(key in {skill_key(a) for a in req} for req in domain.in_demand)
    ][:3]


def seniority(title: str) -> tuple[int, bool]:
    """The ladder rung a title points at (0 entry ... 4 principal; 1 when it says
    nothing) and whether it is a management title."""
    words = set(_words(title).split())
    management = any(word in words for word in _MANAGEMENT)
    level = 1
    for rung, markers in _LEVELS:
        if words & set(markers):
            level = rung
    if management and not words & {"product", "project", "program", "programme",
                                    "marketing", "account", "finance", "delivery"}:  # fmt: skip
        return max(level, 3), True
    return level, False


def place_on_ladder(domain: Domain, current_role: str) -> dict[str, Any]:
    """Where ``current_role`` sits on the field's ladder and the roles to aim for next.
    A role from another field (or from none this map knows, "Graphic Designer" into UX)
    is a move: the way in is the rung below the one the title points at, as seniority
    carries over only in part. No role: the entry rungs."""
    ladder = list(domain.ladder)
    if not current_role:
        return {
            "current_role": "",
            "from_domain": "",
            "changing_fields": False,
            "level": None,
            "ladder": ladder,
            "management": list(domain.management),
            "next_roles": ladder[:2],
        }
    own = find_domain(current_role)
    level, manages = seniority(current_role)
    rung = _rung_of(ladder, current_role)
    managing = _rung_of(domain.management, current_role)
    changing = own is not domain and rung is None and managing is None
    if changing:
        entry = max(0, min(level, len(ladder) - 1) - 1)
        next_roles = [ladder[entry]]
        if manages and domain.management:
            next_roles.append(domain.management[0])
    elif managing is not None or (manages and rung is None and domain.management):
        position = managing or 0
        next_roles = list(domain.management[position + 1 : position + 2]) or [
            f"a broader {domain.management[-1]} remit"
        ]
    else:
        rung = min(level, len(ladder) - 1) if rung is None else rung
        level = rung
        next_roles = ladder[rung + 1 : rung + 2]
        if rung >= 2 and domain.management:
            next_roles.append(domain.management[0])  # the fork: deeper, or leading people
        if not next_roles:
            next_roles = [f"a wider {ladder[-1]} scope"]
    return {
        "current_role": " ".join(current_role.split()),
        "from_domain": own.name if own else "",
        "changing_fields": changing,
        "level": level,
        "ladder": ladder,
        "management": list(domain.management),
        "next_roles": next_roles,
    }


def _rung_of(roles: Sequence[str], title: str) -> int | None:
    """The index of the longest of ``roles`` that ``title`` contains, if any."""
    key = _words(title)
    found = [(len(role), index) for index, role in enumerate(roles) if _words(role) in key]
    return max(found)[1] if found else None


def next_steps(
    market: Mapping[str, Any], match: Mapping[str, Any], ladder: Mapping[str, Any]
) -> list[str]:
    """The things to do, most important first: the top gaps, a rising skill, the skills
    to show, and the role to aim for."""
    steps: list[str] = []
    domain = str(market["domain"])
    for gap in list(match["gaps"])[:3]:
        alternatives = list(gap["alternatives"])
        alt = f" (or {_listing(alternatives, 'or')})" if alternatives else ""
        steps.append(
            f"Learn {gap['skill']}{alt}: number {gap['rank']} of the skills {domain} "
            "employers ask for, and one you do not list yet."
        )
    if match["emerging_gaps"]:
        steps.append(
            f"Try {match['emerging_gaps'][0]}, a rising skill in {domain}, in a small project."
        )
    shown = [m["with"] for m in list(match["matched"])[:3]]
    if shown:
        each = "each with a result you achieved with it" if len(shown) > 1 else "with a result"
        steps.append(f"Put {_listing(shown)} first on your CV, {each}.")
    carried = [t["skill"] for t in match["transferable"] if not t["wanted_in"]][:2]
    carried += [t["skill"] for t in match["transferable"] if t["wanted_in"]][: 2 - len(carried)]
    if carried and ladder["changing_fields"]:
        carries = "it carries" if len(carried) == 1 else "they carry"
        steps.append(f"Tell the story of {_listing(carried)}: {carries} over from your field.")
    targets = list(ladder["next_roles"])
    if targets:
        move = "break in as" if ladder["changing_fields"] else "aim for"
        if not ladder["current_role"]:
            move = "start as"
        steps.append(f"Next role to {move}: {_listing(targets, 'or')}.")
    return steps


def _listing(items: Sequence[str], word: str = "and") -> str:
    items = list(items)
    if not items:
        return "(none)"
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} {word} {items[-1]}"
