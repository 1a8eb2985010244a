"""The cv_tailoring text engine: vocabulary, analysis, matching, tailoring and rendering."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2

from resume import (
    VOCABULARY,
    LocalCvWriter,
    Match,
    PostingAnalysis,
    Profile,
    TailoredCv,
    WriterOutputError,
    analyze_posting,
    canonical_skill,
    evidenced_skills,
    find_skills,
    load_profile,
    render_preview,
    score_match,
    tailor_cv,
    tailoring_result,
    write_cover_letter,
)
from resume.vocabulary import skill_key

RESUME: dict[str, Any] = {
    "name": "  Dana   Okafor ",
    "headline": "Senior backend engineer",
    "email": "dana@example.com",
    "location": "Berlin, Germany",
    "summary": (
        "Backend engineer with eight years building payment and data platforms. "
        "I care about reliable, observable systems."
    ),
    "skills": [
        "Python",
        "postgres",
        "k8s",
        "AWS",
        "Docker",
        "python",
        "Event sourcing",
        "Terraform",
    ],
    "experience": [
        {
            "title": "Senior Software Engineer",
            "company": "Finlytics",
            "start": "2021",
            "bullets": [
                "Led a team of four to rebuild the invoicing pipeline, cutting close from 3 days "
                "to 6 hours.",
                "Designed a Python service on PostgreSQL handling 2M payments a day.",
                "Migrated 40 services to Kubernetes on AWS with zero downtime.",
            ],
        },
        {
            "title": "Software Engineer",
            "company": "Cartwise",
            "start": "2017",
            "end": "2021",
            "bullets": [
                "Mentored two new engineers through their first year.",
                "Built backend services for order tracking in Python and Django.",
            ],
        },
        {
            "title": "Junior Developer",
            "company": "Lagos Web Studio",
            "start": "2015",
            "end": "2017",
            "bullets": ["Maintained client websites and their MySQL databases."],
        },
    ],
    "education": [
        {"degree": "BSc Computer Science", "institution": "University of Lagos", "year": 2015}
    ],
}

POSTING: dict[str, Any] = {
    "title": "Senior Backend Engineer",
    "company": "Streamline",
    "description": """About the role
Streamline builds real-time routing software for delivery fleets. You will design backend
services for our routing platform and own them in production.

What you'll do:
- Build and operate Python services backed by PostgreSQL.
- Run workloads on Kubernetes and expose them over gRPC.
- Stream events through Kafka to the routing platform and our analytics.

Requirements:
- 5+ years of backend development.

Nice to have:
- Experience with Go or Terraform.
- Familiarity with routing problems.
""",
    "requirements": ["Python", "PostgreSQL", "Kubernetes", "gRPC", "Kafka"],
    "nice_to_have": ["Go", "Terraform"],
}


def struct_round_trip(data: Mapping[str, Any]) -> dict[str, Any]:
    """What a step's checkpoint looks like to the next step: every number a float."""
    message = struct_pb2.Struct()
    message.update(data)
    return json_format.MessageToDict(message)


def profile_of(**changes: Any) -> Profile:
    resume = copy.deepcopy(RESUME)
    resume.update(changes)
    return load_profile(resume)


class ScriptedWriter(LocalCvWriter):
    """A stand-in for a model-backed writer, returning canned text where given."""

    def __init__(
        self, summary: str | None = None, bullet_suffix: str = "", letter: str | None = None
    ) -> None:
        self.summary = summary
        self.bullet_suffix = bullet_suffix
        self.letter = letter

    async def write_summary(self, profile: Profile, analysis: PostingAnalysis, match: Match) -> str:
        if self.summary is None:
            return await super().write_summary(profile, analysis, match)
        return self.summary

    async def rewrite_bullet(self, bullet: str, skills: Sequence[str]) -> str:
        return bullet + self.bullet_suffix

    async def write_cover_letter(
        self, profile: Profile, analysis: PostingAnalysis, match: Match
    ) -> str:
        if self.letter is None:
            return await super().write_cover_letter(profile, analysis, match)
        return self.letter


@pytest.fixture
def profile() -> Profile:
    return load_profile(RESUME)


@pytest.fixture
def analysis() -> PostingAnalysis:
    return analyze_posting(POSTING)


@pytest.fixture
def match(profile: Profile, analysis: PostingAnalysis) -> Match:
    return score_match(profile, analysis)


# --- vocabulary -----------------------------------------------------------------------------


def test_vocabulary_is_large_and_every_form_names_one_skill() -> None:
    assert len(VOCABULARY) >= 300
    owner: dict[str, str] = {}
    for canonical, aliases in VOCABULARY.items():
        for form in (canonical, *aliases):
            assert owner.setdefault(skill_key(form), canonical) == canonical, form
            assert canonical_skill(form) == canonical


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("k8s", "Kubernetes"),
        ("postgres", "PostgreSQL"),
        ("postgresql", "PostgreSQL"),
        ("js", "JavaScript"),
        ("ML", "Machine Learning"),
        ("gcp", "Google Cloud"),
        ("ci/cd", "CI/CD"),
        ("react.js", "React"),
        ("ReactJS", "React"),
        ("golang", "Go"),
        ("  machine   learning ", "Machine Learning"),
    ],
)
def test_aliases_canonicalise(alias: str, canonical: str) -> None:
    assert canonical_skill(alias) == canonical
    assert find_skills(f"Five years of {alias} in production.") == [canonical]


@pytest.mark.parametrize(
    ("text", "skills"),
    [
        ("We are good at going after good goals.", []),
        ("Services written in Go and Python.", ["Go", "Python"]),
        ("Our go-to-market team is great.", []),
        ("A modern C++ codebase.", ["C++"]),
        ("C++ and C# on the desktop, C for firmware.", ["C++", "C#", "C", "Firmware"]),
        ("We build UIs in React and Redux.", ["React", "Redux"]),
        ("Statistics in R and Python.", ["Statistics", "R", "Python"]),
        ("Report to C-level stakeholders and our R&D group.", []),
        ("Backends in Node.js and .NET.", ["Node.js", ".NET"]),
        ("The rest of the team designs REST APIs.", ["REST"]),
        ("Deploys via ci/cd to k8s on GCP.", ["CI/CD", "Kubernetes", "Google Cloud"]),
    ],
)
def test_skill_matching_respects_word_boundaries(text: str, skills: list[str]) -> None:
    assert find_skills(text) == skills


# --- load_profile ---------------------------------------------------------------------------


def test_load_profile_normalises(profile: Profile) -> None:
    assert profile.name == "Dana Okafor"
    assert profile.skills == (
        "Python",
        "PostgreSQL",
        "Kubernetes",
        "AWS",
        "Docker",
        "Event sourcing",
        "Terraform",
    )
    assert [role.company for role in profile.experience] == [
        "Finlytics",
        "Cartwise",
        "Lagos Web Studio",
    ]
    assert profile.experience[0].end == ""
    assert profile.education[0].year == "2015"
    assert profile.phone == ""


def test_load_profile_keeps_the_first_spelling_of_unknown_skills() -> None:
    skills = ["Event  sourcing", "event Sourcing", "PostgreSQL", "Postgres"]
    assert profile_of(skills=skills).skills == ("Event sourcing", "PostgreSQL")


def test_load_profile_requires_a_name() -> None:
    with pytest.raises(ValueError, match="no name"):
        load_profile({"name": "   "})


# --- analyze_posting ------------------------------------------------------------------------


def test_analyze_posting_extracts_required_and_nice_to_have(analysis: PostingAnalysis) -> None:
    assert (analysis.title, analysis.company) == ("Senior Backend Engineer", "Streamline")
    assert analysis.required_skills == ("Python", "PostgreSQL", "Kubernetes", "gRPC", "Kafka")
    assert analysis.nice_to_have_skills == ("Go", "Terraform")
    assert analysis.seniority == "senior"


def test_keywords_are_salient_terms_that_are_not_skills(analysis: PostingAnalysis) -> None:
    assert 0 < len(analysis.keywords) <= 15
    assert "routing platform" in analysis.keywords
    assert "backend" in analysis.keywords
    for keyword in analysis.keywords:
        assert not find_skills(keyword)
        assert keyword not in {"the", "and", "you", "streamline", "experience"}


def test_free_text_posting_orders_by_frequency_and_finds_nice_to_haves() -> None:
    posting = {
        "title": "Data Engineer",
        "company": "Acme",
        "description": (
            "You will build pipelines in Python with Airflow. Python is used everywhere, "
            "and we model data in dbt on Snowflake with Python tooling. Knowledge of Spark is "
            "a plus.\n\nBonus points\n- Terraform\n- Kubernetes experience\n\n"
            "About us:\nWe run on AWS."
        ),
    }
    analysis = analyze_posting(posting)
    assert analysis.required_skills[0] == "Python"
    assert set(analysis.required_skills) == {"Python", "Apache Airflow", "dbt", "Snowflake", "AWS"}
    assert analysis.nice_to_have_skills == ("Apache Spark", "Terraform", "Kubernetes")


def test_structured_lists_win_over_the_description() -> None:
    posting = {
        "title": "Engineer",
        "company": "Acme",
        "description": "We use Go, Rust and Python.",
        "requirements": ["Rust"],
        "nice_to_have": ["Go"],
    }
    analysis = analyze_posting(posting)
    assert analysis.required_skills == ("Rust", "Python")
    assert analysis.nice_to_have_skills == ("Go",)


def test_odd_descriptions_do_not_break_the_analysis() -> None:
    posting = {"title": "", "company": "", "description": "###\n***\n\n:\n- \n\u2022 Go!"}
    analysis = analyze_posting(posting)
    assert analysis.required_skills == ("Go",)
    assert analysis.seniority == "unspecified"
    assert analyze_posting({"title": "X", "company": "Y", "description": ""}).keywords == ()


@pytest.mark.parametrize(
    ("title", "description", "seniority"),
    [
        ("Junior Data Analyst", "", "junior"),
        ("Staff Software Engineer", "", "lead"),
        ("Sr. Product Manager", "", "senior"),
        ("Software Engineer II", "", "mid"),
        ("Backend Engineer", "You have 3+ years of Python.", "mid"),
        ("Backend Engineer", "You have 6-8 years of Python.", "senior"),
        ("Backend Engineer", "Join as a tech lead for payments.", "lead"),
        ("Backend Engineer", "You will lead the design of our APIs.", "unspecified"),
        ("Backend Engineer", "Over the past 20 years we have grown.", "unspecified"),
    ],
)
def test_seniority(title: str, description: str, seniority: str) -> None:
    posting = {"title": title, "company": "Acme", "description": description}
    assert analyze_posting(posting).seniority == seniority


# --- score_match ----------------------------------------------------------------------------


def test_match_splits_matched_and_missing(match: Match) -> None:
    assert match.matched_skills == ("Python", "PostgreSQL", "Kubernetes")
    assert match.missing_skills == ("gRPC", "Kafka")
    assert match.matched_nice_to_have == ("Terraform",)
    assert match.missing_nice_to_have == ("Go",)
    assert 0 < match.match_score < 100


def test_skills_shown_only_in_bullets_count(analysis: PostingAnalysis) -> None:
    experience = copy.deepcopy(RESUME["experience"])
    experience[1]["bullets"].append("Built Kafka consumers with exactly-once delivery.")
    profile = profile_of(skills=[], experience=experience)
    assert "Kafka" in evidenced_skills(profile)
    assert "Kafka" in score_match(profile, analysis).matched_skills


def test_a_better_match_scores_strictly_higher(
    profile: Profile, analysis: PostingAnalysis, match: Match
) -> None:
    experience = copy.deepcopy(RESUME["experience"])
    experience[0]["bullets"].append("Exposed the ledger over gRPC and streamed events via Kafka.")
    better = score_match(profile_of(experience=experience), analysis)
    assert better.missing_skills == ()
    assert better.match_score > match.match_score
    assert score_match(load_profile(RESUME), analyze_posting(POSTING)) == match


def test_empty_profile_scores_low(analysis: PostingAnalysis) -> None:
    bare = score_match(load_profile({"name": "Sam Lee"}), analysis)
    assert bare.match_score == 0
    assert bare.matched_skills == ()
    unrelated = score_match(profile_of(skills=[], experience=[], summary="", headline=""), analysis)
    assert unrelated.match_score < 20


def test_score_is_100_only_when_everything_matches(profile: Profile) -> None:
    posting = {"title": "Engineer", "company": "Acme", "description": "", "nice_to_have": ["Go"]}
    full = analyze_posting({**posting, "requirements": ["Python", "Kubernetes"]})
    assert score_match(profile, full).match_score < 100
    assert score_match(profile_of(skills=["Python", "k8s", "golang"]), full).match_score == 100


# --- tailor_cv ------------------------------------------------------------------------------


async def test_tailor_cv_reorders_and_rewrites_truthfully(
    profile: Profile, analysis: PostingAnalysis, match: Match
) -> None:
    cv = await tailor_cv(profile, analysis, match, LocalCvWriter())
    assert [(r.title, r.company, r.start, r.end) for r in cv.experience] == [
        (r.title, r.company, r.start, r.end) for r in profile.experience
    ]
    assert cv.skills[:4] == ("Python", "PostgreSQL", "Kubernetes", "Terraform")
    assert set(cv.skills) == set(profile.skills)
    assert cv.gaps == ("gRPC", "Kafka")
    assert cv.education == profile.education

    latest = cv.experience[0].bullets
    assert latest[0].startswith("Python")
    assert "PostgreSQL" in latest[0]
    assert latest[1].startswith("Kubernetes")
    assert latest[2].startswith("Led a team of four")
    assert cv.experience[1].bullets[0].startswith("Python")
    assert cv.experience[1].bullets[1] == "Mentored two new engineers through their first year."

    for tailored, original in zip(cv.experience, profile.experience, strict=True):
        assert len(tailored.bullets) == len(original.bullets)
        for bullet in tailored.bullets:
            source = next(b for b in original.bullets if bullet.endswith(b))
            assert set(find_skills(bullet)) <= set(find_skills(source))


async def test_tailored_headline_and_summary_claim_only_shown_skills(
    profile: Profile, analysis: PostingAnalysis, match: Match
) -> None:
    cv = await tailor_cv(profile, analysis, match, LocalCvWriter())
    assert cv.headline.startswith("Senior Backend Engineer")
    shown = set(evidenced_skills(profile))
    assert set(find_skills(cv.headline)) <= shown
    assert set(find_skills(cv.summary)) <= shown
    assert "Streamline" in cv.summary


async def test_headline_is_not_aligned_to_a_job_never_held(profile: Profile) -> None:
    analysis = analyze_posting(
        {"title": "Senior Data Scientist", "company": "Acme", "description": "Python."}
    )
    cv = await tailor_cv(profile, analysis, score_match(profile, analysis), LocalCvWriter())
    assert cv.headline == "Senior backend engineer"


async def test_rewrites_that_add_skills_are_discarded(
    profile: Profile, analysis: PostingAnalysis, match: Match
) -> None:
    writer = ScriptedWriter(bullet_suffix=" Also Kafka and Rust.")
    cv = await tailor_cv(profile, analysis, match, writer)
    assert cv.experience[0].bullets[0] == profile.experience[0].bullets[1]
    assert not any("Kafka" in b for role in cv.experience for b in role.bullets)


async def test_a_summary_claiming_missing_skills_is_rejected(
    profile: Profile, analysis: PostingAnalysis, match: Match
) -> None:
    writer = ScriptedWriter(summary="Kafka and gRPC expert.")
    with pytest.raises(WriterOutputError) as caught:
        await tailor_cv(profile, analysis, match, writer)
    assert set(caught.value.skills) == {"Kafka", "gRPC"}
    assert "Kafka" not in str(caught.value)


# --- write_cover_letter ---------------------------------------------------------------------


async def test_cover_letter_uses_only_resume_and_posting_facts(
    profile: Profile, analysis: PostingAnalysis, match: Match
) -> None:
    letter = await write_cover_letter(profile, analysis, match, LocalCvWriter())
    assert letter.startswith("Dear Hiring Team at Streamline,\n")
    assert "Senior Backend Engineer" in letter
    assert letter.splitlines()[-1] == "Dana Okafor"
    assert "Finlytics" in letter
    assert "Designed a Python service on PostgreSQL" in letter

    shown = {skill_key(s) for s in evidenced_skills(profile)}
    paragraphs = letter.split("\n\n")
    growth = [p for p in paragraphs if "keen to grow" in p]
    assert len(growth) == 1
    for paragraph in paragraphs:
        lacking = [s for s in find_skills(paragraph) if skill_key(s) not in shown]
        if paragraph in growth:
            assert lacking == ["gRPC", "Kafka"]
        else:
            assert lacking == []


async def test_cover_letter_greeting_and_signature_are_enforced(
    profile: Profile, analysis: PostingAnalysis, match: Match
) -> None:
    writer = ScriptedWriter(letter="Dear Sir or Madam,\n\nI would love to build Python at scale.")
    letter = await write_cover_letter(profile, analysis, match, writer)
    assert letter.startswith("Dear Hiring Team at Streamline,\n\nI would love")
    assert letter.endswith("Kind regards,\nDana Okafor")


@pytest.mark.parametrize(
    "letter",
    ["", "I am an expert in Rust.", "I hope to learn gRPC, Kafka and Go."],
)
async def test_cover_letters_claiming_too_much_are_rejected(
    profile: Profile, analysis: PostingAnalysis, match: Match, letter: str
) -> None:
    with pytest.raises(WriterOutputError):
        await write_cover_letter(profile, analysis, match, ScriptedWriter(letter=letter))


# --- render_preview and the result ----------------------------------------------------------


async def test_preview_has_the_expected_sections(
    profile: Profile, analysis: PostingAnalysis, match: Match
) -> None:
    cv = await tailor_cv(profile, analysis, match, LocalCvWriter())
    letter = await write_cover_letter(profile, analysis, match, LocalCvWriter())
    preview = render_preview(cv, letter, match, analysis)
    lines = preview.splitlines()
    assert lines[0] == "# Dana Okafor"
    expected_in_order = [
        f"**{cv.headline}**",
        "dana@example.com \u00b7 Berlin, Germany",
        f"**Match score:** {match.match_score}/100 for Senior Backend Engineer at Streamline",
        "## Summary",
        "## Skills",
        "## Experience",
        "### Senior Software Engineer \u2014 Finlytics (2021 \u2013 Present)",
        "### Software Engineer \u2014 Cartwise (2017 \u2013 2021)",
        "## Education",
        "- BSc Computer Science \u2014 University of Lagos (2015)",
        "## Gaps to address",
        "- gRPC",
        "- Go (nice to have)",
        "---",
        "## Cover letter",
        "Dear Hiring Team at Streamline,",
    ]
    positions = [lines.index(line) for line in expected_in_order]
    assert positions == sorted(positions)
    assert f"- {cv.experience[0].bullets[0]}" in lines


def test_preview_leaves_out_empty_sections() -> None:
    cv = TailoredCv(name="Sam Lee")
    analysis = PostingAnalysis(title="Engineer", company="Acme")
    preview = render_preview(cv, "Dear Hiring Team at Acme,", Match(match_score=0), analysis)
    assert "## Gaps to address" not in preview
    assert "## Experience" not in preview
    assert "\u00b7" not in preview
    assert preview.index("---") < preview.index("## Cover letter")


async def test_round_trips_survive_struct_floats(
    profile: Profile, analysis: PostingAnalysis, match: Match
) -> None:
    cv = await tailor_cv(profile, analysis, match, LocalCvWriter())
    assert Profile.from_dict(struct_round_trip(profile.to_dict())) == profile
    assert load_profile(struct_round_trip(RESUME)) == profile
    assert PostingAnalysis.from_dict(struct_round_trip(analysis.to_dict())) == analysis
    coerced = struct_round_trip(match.to_dict())
    assert isinstance(coerced["match_score"], float)
    assert Match.from_dict(coerced) == match
    assert TailoredCv.from_dict(struct_round_trip(cv.to_dict())) == cv


async def test_pipeline_result_is_deterministic_with_exactly_six_keys() -> None:
    async def run() -> dict[str, Any]:
        profile = Profile.from_dict(struct_round_trip(load_profile(RESUME).to_dict()))
        analysis = PostingAnalysis.from_dict(struct_round_trip(analyze_posting(POSTING).to_dict()))
        match = Match.from_dict(struct_round_trip(score_match(profile, analysis).to_dict()))
        writer = LocalCvWriter()
        cv = await tailor_cv(profile, analysis, match, writer)
        letter = await write_cover_letter(profile, analysis, match, writer)
        cv = TailoredCv.from_dict(struct_round_trip(cv.to_dict()))
        return tailoring_result(cv, letter, match, render_preview(cv, letter, match, analysis))

    result = await run()
    assert result == await run()
    assert set(result) == {
        "tailored_cv",
        "cover_letter",
        "match_score",
        "matched_skills",
        "missing_skills",
        "preview_markdown",
    }
    assert isinstance(result["match_score"], int)
    assert result["matched_skills"] == ["Python", "PostgreSQL", "Kubernetes"]
    assert result["missing_skills"] == ["gRPC", "Kafka"]
    assert result["tailored_cv"]["gaps"] == ["gRPC", "Kafka"]
    assert re.search(r"^## Cover letter$", result["preview_markdown"], re.MULTILINE)
    assert struct_round_trip(result)["preview_markdown"] == result["preview_markdown"]
