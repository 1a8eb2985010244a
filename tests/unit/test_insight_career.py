"""insight.career: the market map speaks the résumé vocabulary, fields and titles are
found, skills are matched against the demand (gaps in order), and the ladder gives the
next role, or the way in for someone changing fields."""

from __future__ import annotations

import pytest

from insight.career import (
    DOMAINS,
    domain_named,
    find_domain,
    match_skills,
    next_steps,
    place_on_ladder,
    read_market,
    resolve_domain,
    seniority,
)
from resume import VOCABULARY


def test_every_skill_of_the_market_map_is_a_vocabulary_skill() -> None:
    names = [d.name for d in DOMAINS]
    assert len(names) == len(set(names)) >= 12
    for domain in DOMAINS:
        assert len(domain.in_demand) >= 8, domain.name
        assert domain.emerging, domain.name
        assert len(domain.ladder) == 5, domain.name
        for req in (*domain.in_demand, *domain.emerging):
            for skill in req:
                assert skill in VOCABULARY, (domain.name, skill)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("Data Engineering", "Data Engineering"),
        ("analytics engineer", "Data Engineering"),
        ("AI", "Data Science and Machine Learning"),
        ("machine learning", "Data Science and Machine Learning"),
        ("Business Intelligence", "Data Analytics"),
        ("Site Reliability Engineer", "DevOps and Cloud"),
        ("cloud", "DevOps and Cloud"),
        ("Cyber Security", "Cybersecurity"),
        ("iOS developer", "Mobile Development"),
        ("Senior Front-End Developer", "Frontend Development"),
        ("UI Engineer", "Frontend Development"),
        ("Product Designer", "UX and Product Design"),
        ("Product Owner", "Product Management"),
        ("SEO", "Digital Marketing"),
        ("Scrum Master", "Project Management"),
        ("Account Executive", "Sales"),
        ("FP&A", "Finance"),
        ("Senior Software Engineer", "Software Engineering"),
        ("Backend", "Software Engineering"),
        ("Pastry", None),
    ],
)
def test_fields_and_titles_find_the_most_specific_field(text: str, field: str | None) -> None:
    found = find_domain(text)
    assert (found.name if found else None) == field


def test_an_unnamed_field_is_found_from_the_skills() -> None:
    assert resolve_domain("Kubernetes and Terraform") is domain_named("DevOps and Cloud")
    found = resolve_domain("something with data", skills=["SQL", "Tableau", "Excel"])
    assert found is domain_named("Data Analytics")
    assert resolve_domain("fintech", current_role="Product Manager") is domain_named(
        "Product Management"
    )
    assert resolve_domain("pastry", skills=["Baking"]) is None


def test_skills_are_matched_in_the_vocabulary_s_names_with_gaps_in_demand_order() -> None:
    domain = domain_named("Data Engineering")
    match = match_skills(domain, ["python", "postgres", "k8s", "BigQuery", "Mentoring", "Baking"])
    assert match["matched"] == [
        {"rank": 1, "skill": "Python", "with": "Python"},
        {"rank": 2, "skill": "SQL", "with": "PostgreSQL"},
        {"rank": 6, "skill": "Snowflake", "with": "BigQuery"},
    ]
    assert [g["skill"] for g in match["gaps"]] == [
        "Apache Spark",
        "Apache Airflow",
        "dbt",
        "Data Modeling",
        "Kafka",
        "AWS",
        "ETL",
    ]
    assert match["gaps"][0]["alternatives"] == ["PySpark"]
    assert match["emerging_gaps"] == [
        "Apache Flink",
        "Vector Databases",
        "Terraform",
        "Data Warehousing",
    ]
    assert match["transferable"] == [
        {"skill": "Kubernetes", "wanted_in": ["DevOps and Cloud"]},
        {"skill": "Mentoring", "wanted_in": []},
        {"skill": "Baking", "wanted_in": []},
    ]
    assert match["coverage"] == 30
    assert match_skills(domain, [])["coverage"] == 0


@pytest.mark.parametrize(
    ("title", "level", "manages"),
    [
        ("Junior Data Analyst", 0, False),
        ("Data Analyst", 1, False),
        ("Sr. Software Engineer", 2, False),
        ("Staff Engineer", 3, False),
        ("Principal Architect", 4, False),
        ("Engineering Manager", 3, True),
        ("Product Manager", 1, False),
    ],
)
def test_seniority_is_read_from_the_title(title: str, level: int, manages: bool) -> None:
    assert seniority(title) == (level, manages)


def test_the_ladder_gives_the_next_rung_and_the_fork_into_management() -> None:
    engineering = domain_named("Software Engineering")
    assert place_on_ladder(engineering, "Software Engineer")["next_roles"] == [
        "Senior Software Engineer"
    ]
    assert place_on_ladder(engineering, "Senior Software Engineer")["next_roles"] == [
        "Staff Engineer",
        "Engineering Manager",
    ]
    assert place_on_ladder(engineering, "Engineering Manager")["next_roles"] == [
        "Director of Engineering"
    ]
    marketing = domain_named("Digital Marketing")
    assert place_on_ladder(marketing, "Marketing Manager")["next_roles"] == [
        "Senior Marketing Manager"
    ]


def test_changing_fields_starts_a_rung_lower_and_no_role_starts_at_the_entry() -> None:
    data = domain_named("Data Engineering")
    move = place_on_ladder(data, "Senior Software Engineer")
    assert move["changing_fields"] is True
    assert move["from_domain"] == "Software Engineering"
    assert move["next_roles"] == ["Data Engineer"]
    fresh = place_on_ladder(data, "")
    assert fresh["next_roles"] == ["Junior Data Engineer", "Data Engineer"]
    assert fresh["level"] is None


def test_a_role_the_map_does_not_know_is_a_move_into_the_field() -> None:
    design = domain_named("UX and Product Design")
    move = place_on_ladder(design, "Graphic Designer")
    assert move["changing_fields"] is True
    assert move["from_domain"] == ""
    assert move["next_roles"] == ["Junior Product Designer"]
    # A manager of another kind of engineering starts senior, or manages.
    lead = place_on_ladder(domain_named("Data Engineering"), "Engineering Manager")
    assert lead["next_roles"] == ["Senior Data Engineer", "Data Engineering Manager"]


def test_next_steps_put_the_top_gaps_first_and_end_with_the_role() -> None:
    domain = domain_named("Data Engineering")
    market = read_market(domain)
    assert market["summary"].startswith(
        "Data Engineering employers ask most often for Python, SQL, Apache Spark, Apache "
        "Airflow and dbt. Demand is driven by"
    )
    match = match_skills(domain, ["Python", "SQL", "Kubernetes"])
    ladder = place_on_ladder(domain, "Senior Software Engineer")
    steps = next_steps(market, match, ladder)
    assert steps[0] == (
        "Learn Apache Spark (or PySpark): number 3 of the skills Data Engineering employers "
        "ask for, and one you do not list yet."
    )
    assert steps[3] == ("Try Apache Flink, a rising skill in Data Engineering, in a small project.")
    assert steps[-2] == "Tell the story of Kubernetes: it carries over from your field."
    assert steps[-1] == "Next role to break in as: Data Engineer."
