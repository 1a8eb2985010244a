"""Job input schemas as JSON Schema (``jobkit.schema``): the same verdicts, field paths and
wording as the hand-rolled ``Field`` validator they replace.

The JSON Schemas below are the worked translation of today's ``Field`` schemas (copied
here as they stood in ``jobkit.catalog``), kept side by side so each bad input is checked
against both validators. They are the reference the job-type folders take theirs from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from jobkit.catalog import Field
from jobkit.catalog import validate as old_validate
from jobkit.errors import ConfigError, FieldViolation
from jobkit.schema import DRAFT_2020_12, NON_BLANK, InputSchema, compile_schema

DRAFT = DRAFT_2020_12

# --- JSON Schema (draft 2020-12) --------------------------------------------------------
# A required string: "minLength": 1 and "pattern": NON_BLANK ("\\S"), read "must not be
# empty". Numbers are "number" (Struct sends floats); "additionalProperties" is left open:
# unknown members are allowed, as they always were.

RESUME_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "pattern": NON_BLANK, "maxLength": 200},
        "headline": {"type": "string", "maxLength": 2000},
        "email": {"type": "string", "maxLength": 320},
        "phone": {"type": "string", "maxLength": 64},
        "location": {"type": "string", "maxLength": 2000},
        "summary": {"type": "string", "maxLength": 20000},
        "skills": {"type": "array", "items": {"type": "string"}, "maxItems": 500},
        "experience": {
            "type": "array",
            "maxItems": 100,
            "items": {
                "type": "object",
                "required": ["title", "company"],
                "properties": {
                    "title": {
                        "type": "string",
                        "minLength": 1,
                        "pattern": NON_BLANK,
                        "maxLength": 2000,
                    },
                    "company": {
                        "type": "string",
                        "minLength": 1,
                        "pattern": NON_BLANK,
                        "maxLength": 2000,
                    },
                    "start": {"type": "string", "maxLength": 64},
                    "end": {"type": "string", "maxLength": 64},
                    "bullets": {"type": "array", "items": {"type": "string"}, "maxItems": 100},
                },
            },
        },
        "education": {
            "type": "array",
            "maxItems": 50,
            "items": {
                "type": "object",
                "required": ["degree", "institution"],
                "properties": {
                    "degree": {
                        "type": "string",
                        "minLength": 1,
                        "pattern": NON_BLANK,
                        "maxLength": 2000,
                    },
                    "institution": {
                        "type": "string",
                        "minLength": 1,
                        "pattern": NON_BLANK,
                        "maxLength": 2000,
                    },
                    # "2019" or 2019; the length applies to the string form only.
                    "year": {"type": ["string", "number"], "maxLength": 16},
                },
            },
        },
    },
}

POSTING_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["title", "company", "description"],
    "properties": {
        "title": {"type": "string", "minLength": 1, "pattern": NON_BLANK, "maxLength": 2000},
        "company": {"type": "string", "minLength": 1, "pattern": NON_BLANK, "maxLength": 2000},
        "description": {
            "type": "string",
            "minLength": 1,
            "pattern": NON_BLANK,
            "maxLength": 100000,
        },
        "requirements": {"type": "array", "items": {"type": "string"}, "maxItems": 200},
        "nice_to_have": {"type": "array", "items": {"type": "string"}, "maxItems": 200},
    },
}

CV_TAILORING_INPUT: dict[str, Any] = {
    "$schema": DRAFT,
    "type": "object",
    "required": ["resume", "job_posting"],
    "properties": {"resume": RESUME_JSON_SCHEMA, "job_posting": POSTING_JSON_SCHEMA},
}

RESUME_IMPROVEMENT_INPUT: dict[str, Any] = {
    "$schema": DRAFT,
    "type": "object",
    "required": ["resume"],
    "properties": {"resume": RESUME_JSON_SCHEMA},
}

SKILL_GAP_ANALYSIS_INPUT: dict[str, Any] = {
    "$schema": DRAFT,
    "type": "object",
    "required": ["resume", "target_role"],
    "properties": {
        "resume": RESUME_JSON_SCHEMA,
        "target_role": {"type": "string", "minLength": 1, "pattern": NON_BLANK, "maxLength": 200},
        "target_skills": {"type": "array", "items": {"type": "string"}, "maxItems": 100},
        "hours_per_week": {"type": "number", "minimum": 1, "maximum": 80},
    },
}

NOOP_INPUT: dict[str, Any] = {
    "$schema": DRAFT,
    "type": "object",
    "properties": {
        "sleep_ms": {"type": "number", "minimum": 0, "maximum": 600000},
        "fail_attempts": {"type": "number", "minimum": 0, "maximum": 100},
        "write": {"type": "string", "maxLength": 20000},
        "tokens": {"type": "number", "minimum": 0, "maximum": 1000000},
    },
}

# --- Today's Field schemas, as they stood in jobkit.catalog ------------------------------

_TEXT = 20_000
_LINE = 2_000

OLD_RESUME: Mapping[str, Field] = {
    "name": Field(str, required=True, max_length=200),
    "headline": Field(str, max_length=_LINE),
    "email": Field(str, max_length=320),
    "phone": Field(str, max_length=64),
    "location": Field(str, max_length=_LINE),
    "summary": Field(str, max_length=_TEXT),
    "skills": Field(list, items=str, max_length=500),
    "experience": Field(
        list,
        max_length=100,
        items={
            "title": Field(str, required=True, max_length=_LINE),
            "company": Field(str, required=True, max_length=_LINE),
            "start": Field(str, max_length=64),
            "end": Field(str, max_length=64),
            "bullets": Field(list, items=str, max_length=100),
        },
    ),
    "education": Field(
        list,
        max_length=50,
        items={
            "degree": Field(str, required=True, max_length=_LINE),
            "institution": Field(str, required=True, max_length=_LINE),
            "year": Field((str, float, int), max_length=16),
        },
    ),
}

OLD_POSTING: Mapping[str, Field] = {
    "title": Field(str, required=True, max_length=_LINE),
    "company": Field(str, required=True, max_length=_LINE),
    "description": Field(str, required=True, max_length=100_000),
    "requirements": Field(list, items=str, max_length=200),
    "nice_to_have": Field(list, items=str, max_length=200),
}

OLD_INPUTS: Mapping[str, Mapping[str, Field]] = {
    "cv_tailoring": {
        "resume": Field(dict, required=True, fields=OLD_RESUME),
        "job_posting": Field(dict, required=True, fields=OLD_POSTING),
    },
    "resume_improvement": {"resume": Field(dict, required=True, fields=OLD_RESUME)},
    "skill_gap_analysis": {
        "resume": Field(dict, required=True, fields=OLD_RESUME),
        "target_role": Field(str, required=True, max_length=200),
        "target_skills": Field(list, items=str, max_length=100),
        "hours_per_week": Field((float, int), minimum=1, maximum=80),
    },
    "noop": {
        "sleep_ms": Field((float, int), minimum=0, maximum=600_000),
        "fail_attempts": Field((float, int), minimum=0, maximum=100),
        "write": Field(str, max_length=20_000),
        "tokens": Field((float, int), minimum=0, maximum=1_000_000),
    },
}

NEW_INPUTS: Mapping[str, InputSchema] = {
    "cv_tailoring": compile_schema(CV_TAILORING_INPUT),
    "resume_improvement": compile_schema(RESUME_IMPROVEMENT_INPUT),
    "skill_gap_analysis": compile_schema(SKILL_GAP_ANALYSIS_INPUT),
    "noop": compile_schema(NOOP_INPUT),
}

# --- Inputs -----------------------------------------------------------------------------

RESUME: dict[str, Any] = {
    "name": "Ada Lovelace",
    "headline": "Analyst",
    "email": "ada@example.com",
    "skills": ["python", "sql"],
    "experience": [
        {
            "title": "Engineer",
            "company": "Engines Ltd",
            "start": "1842",
            "bullets": ["Wrote the first program", "Cut run time 30%"],
        }
    ],
    "education": [
        {"degree": "BSc", "institution": "Home", "year": "1835"},
        {"degree": "MSc", "institution": "Home", "year": 1836.0},
    ],
}
POSTING: dict[str, Any] = {
    "title": "Data Engineer",
    "company": "Acme",
    "description": "Build pipelines.",
    "requirements": ["python"],
}


def _resume(**changes: Any) -> dict[str, Any]:
    return {**RESUME, **changes}


def _cv(resume: Any = None, posting: Any = None) -> dict[str, Any]:
    return {
        "resume": RESUME if resume is None else resume,
        "job_posting": POSTING if posting is None else posting,
    }


GOOD: list[tuple[str, dict[str, Any]]] = [
    ("cv_tailoring", _cv()),
    ("cv_tailoring", _cv(resume={"name": "A"}, posting={**POSTING, "requirements": []})),
    # unknown members are allowed, at every level
    ("cv_tailoring", {**_cv(_resume(hobbies=["chess"], extra={"x": 1})), "locale": "en"}),
    # null counts as absent
    ("cv_tailoring", _cv(_resume(headline=None, skills=None))),
    ("resume_improvement", {"resume": RESUME}),
    ("skill_gap_analysis", {"resume": RESUME, "target_role": "Data Engineer"}),
    (
        "skill_gap_analysis",
        {"resume": RESUME, "target_role": "x", "target_skills": ["dbt"], "hours_per_week": 80.0},
    ),
    ("noop", {}),
    ("noop", {"sleep_ms": 10, "fail_attempts": 1.0, "write": "hi", "tokens": 1_000_000}),
    ("noop", {"sleep_ms": None}),
]

BAD: list[tuple[str, str, Any]] = [
    # (what, job type, input)
    ("nothing at all", "cv_tailoring", {}),
    ("null for required", "cv_tailoring", {"resume": None, "job_posting": None}),
    (
        "missing and mistyped, nested",
        "cv_tailoring",
        {"resume": {"skills": "python", "experience": [{"title": "Dev"}]}, "job_posting": {}},
    ),
    ("not objects", "cv_tailoring", {"resume": [], "job_posting": "x"}),
    ("name blank", "cv_tailoring", _cv(_resume(name="   "))),
    ("name empty", "cv_tailoring", _cv(_resume(name=""))),
    ("name too long", "cv_tailoring", _cv(_resume(name="x" * 201))),
    ("name blank and too long", "cv_tailoring", _cv(_resume(name=" " * 300))),
    ("name a number", "cv_tailoring", _cv(_resume(name=5))),
    ("name a bool", "cv_tailoring", _cv(_resume(name=True))),
    ("name null", "cv_tailoring", _cv(_resume(name=None))),
    ("skill entries", "cv_tailoring", _cv(_resume(skills=["a", 3, None, True, {}]))),
    ("too many skills", "cv_tailoring", _cv(_resume(skills=["s"] * 500 + [1]))),
    ("email too long", "cv_tailoring", _cv(_resume(email="e" * 321))),
    ("summary an object", "cv_tailoring", _cv(_resume(summary={"a": 1}))),
    ("experience not a list", "cv_tailoring", _cv(_resume(experience="x"))),
    (
        "experience entries",
        "cv_tailoring",
        _cv(
            _resume(
                experience=[
                    "x",
                    None,
                    {"title": "t", "company": "c", "bullets": [1, "ok", ["no"]]},
                    {"title": " \t\n", "company": 3, "start": "s" * 65},
                    {"title": "t", "company": "c", "bullets": "one"},
                    {"company": None},
                ]
            )
        ),
    ),
    ("too many roles", "cv_tailoring", _cv(_resume(experience=[{"title": 1}] * 101))),
    ("too many bullets", "cv_tailoring", _cv(_resume(experience=[{"bullets": ["b"] * 101}]))),
    (
        "education year",
        "cv_tailoring",
        _cv(
            _resume(
                education=[
                    {"degree": "d", "institution": "i", "year": True},
                    {"degree": "d", "institution": "i", "year": "y" * 17},
                    {"degree": "d", "institution": "i", "year": ["1999"]},
                    {"degree": "", "institution": "i", "year": 123456789012345678},
                ]
            )
        ),
    ),
    (
        "posting fields",
        "cv_tailoring",
        _cv(
            posting={
                "title": "t",
                "company": "",
                "description": "d" * 100_001,
                "requirements": [[]],
                "nice_to_have": {},
            }
        ),
    ),
    ("posting title mistyped, the rest missing", "cv_tailoring", _cv(posting={"title": 1})),
    ("posting blank description", "cv_tailoring", _cv(posting={**POSTING, "description": "\n"})),
    (
        "too many requirements",
        "cv_tailoring",
        _cv(posting={**POSTING, "requirements": ["r"] * 201}),
    ),
    ("both halves wrong", "cv_tailoring", _cv(_resume(name=""), {**POSTING, "title": 1})),
    ("resume missing", "resume_improvement", {}),
    ("resume a string", "resume_improvement", {"resume": "my cv"}),
    ("role missing", "skill_gap_analysis", {"resume": RESUME}),
    ("role empty", "skill_gap_analysis", {"resume": RESUME, "target_role": ""}),
    ("role too long", "skill_gap_analysis", {"resume": RESUME, "target_role": "r" * 201}),
    (
        "hours below",
        "skill_gap_analysis",
        {"resume": RESUME, "target_role": "r", "hours_per_week": 0.5},
    ),
    (
        "hours above",
        "skill_gap_analysis",
        {"resume": RESUME, "target_role": "r", "hours_per_week": 81},
    ),
    (
        "hours a string, skills mistyped",
        "skill_gap_analysis",
        {"resume": RESUME, "target_role": "r", "hours_per_week": "6", "target_skills": [1]},
    ),
    ("sleep negative", "noop", {"sleep_ms": -1}),
    ("sleep too long", "noop", {"sleep_ms": 600_001}),
    ("attempts a word", "noop", {"fail_attempts": "two"}),
    ("attempts a bool", "noop", {"fail_attempts": True}),
    ("attempts a list", "noop", {"fail_attempts": [1]}),
    ("write too long", "noop", {"write": "w" * 20_001}),
    ("all noop fields", "noop", {"sleep_ms": -5, "fail_attempts": 101, "write": 7}),
]


def _pairs(violations: list[FieldViolation]) -> list[tuple[str, str]]:
    return [(v.field, v.description) for v in violations]


@pytest.mark.parametrize(("job_type", "doc"), GOOD)
def test_good_inputs_have_no_violations(job_type: str, doc: dict[str, Any]) -> None:
    assert old_validate(doc, OLD_INPUTS[job_type], "input") == []
    assert NEW_INPUTS[job_type].validate(doc) == []


@pytest.mark.parametrize(("what", "job_type", "doc"), BAD, ids=[case[0] for case in BAD])
def test_bad_inputs_get_the_same_violations_as_the_old_validator(
    what: str, job_type: str, doc: Any
) -> None:
    old = _pairs(old_validate(doc, OLD_INPUTS[job_type], "input"))
    assert old, f"{what}: the old validator accepts it, so the case proves nothing"
    assert _pairs(NEW_INPUTS[job_type].validate(doc)) == old


def test_the_wording_is_todays() -> None:
    schema = NEW_INPUTS["cv_tailoring"]
    doc = _cv(
        _resume(
            name=" ",
            skills=[1],
            experience=[{"company": "c"}, {"title": "t", "company": "c", "end": "e" * 65}],
            education=[{"degree": "d", "institution": "i", "year": False}],
        ),
        {"title": "t", "company": "c", "requirements": ["r"] * 201},
    )
    assert _pairs(schema.validate(doc)) == [
        ("input.resume.name", "must not be empty"),
        ("input.resume.skills[0]", "must be a string"),
        ("input.resume.experience[0].title", "is required"),
        ("input.resume.experience[1].end", "must be at most 64 characters"),
        ("input.resume.education[0].year", "must be a string or a number"),
        ("input.job_posting.description", "is required"),
        ("input.job_posting.requirements", "must have at most 200 entries"),
    ]
    assert _pairs(NEW_INPUTS["noop"].validate({"sleep_ms": -1, "fail_attempts": 101})) == [
        ("input.sleep_ms", "must be at least 0"),
        ("input.fail_attempts", "must be at most 100"),
    ]


def test_a_bound_reads_as_written_where_the_old_one_used_an_exponent() -> None:
    """The one deliberate difference: the old validator formatted bounds with ``:g``."""
    doc = {"tokens": 1_000_001}
    assert _pairs(old_validate(doc, OLD_INPUTS["noop"], "input")) == [
        ("input.tokens", "must be at most 1e+06")
    ]
    assert _pairs(NEW_INPUTS["noop"].validate(doc)) == [("input.tokens", "must be at most 1000000")]


def test_integers_accept_whole_floats_and_never_booleans() -> None:
    schema = compile_schema(
        {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}}
    )
    assert schema.validate({"n": 3.0}) == []
    assert schema.validate({"n": 3}) == []
    assert _pairs(schema.validate({"n": 3.5})) == [("input.n", "must be a whole number")]
    assert _pairs(schema.validate({"n": True})) == [("input.n", "must be a whole number")]
    assert _pairs(schema.validate({"n": 0.0})) == [("input.n", "must be at least 1")]
    number = compile_schema({"type": "number"})
    assert _pairs(number.validate(False, root="x")) == [("x", "must be a number")]


def test_a_document_that_is_not_an_object_is_named_by_its_root() -> None:
    assert _pairs(NEW_INPUTS["noop"].validate(["x"])) == [("input", "must be an object")]


def test_keywords_without_a_mapped_message_get_a_generic_one_naming_the_field() -> None:
    schema = compile_schema(
        {
            "type": "object",
            "properties": {
                "tags": {"type": "array", "contains": {"const": "cv"}},
                "mode": {"enum": ["fast", "slow"]},
                "code": {"type": "string", "pattern": "^[A-Z]+$"},
                "either": {"anyOf": [{"type": "string"}, {"type": "number"}]},
            },
            "dependentRequired": {"mode": ["code"]},
            "additionalProperties": {"not": {"type": "null"}},
        }
    )
    assert _pairs(schema.validate({"tags": ["x"], "mode": "medium", "either": [], "other": 1})) == [
        ("input.tags", 'does not satisfy the schema\'s "contains" rule'),
        ("input.mode", 'must be one of "fast", "slow"'),
        ("input.code", "is required"),
        ("input.either", 'does not satisfy the schema\'s "anyOf" rule'),
    ]
    assert _pairs(schema.validate({"code": "abc"})) == [
        ("input.code", "must match the pattern ^[A-Z]+$")
    ]
    closed = compile_schema({"properties": {"a": {}}, "additionalProperties": False})
    assert _pairs(closed.validate({"a": 1, "b": 2})) == [("input.b", "is not allowed")]


def test_the_schema_is_kept_for_publishing() -> None:
    assert NEW_INPUTS["noop"].schema is NOOP_INPUT


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "strin"},
        {"type": "object", "properties": {"n": {"maxLength": -1}}},
        {"properties": {"n": {"minimum": "0"}}},
        {"required": "name"},
        {"properties": []},
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"},
        {"$schema": "https://example.com/my-own-draft", "type": "object"},
    ],
)
def test_a_malformed_schema_is_refused_when_compiled(schema: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="schema"):
        compile_schema(schema)


def test_a_resume_shared_through_defs_and_ref_reads_the_same() -> None:
    shared = compile_schema(
        {
            "$schema": DRAFT,
            "$defs": {"resume": RESUME_JSON_SCHEMA, "posting": POSTING_JSON_SCHEMA},
            "type": "object",
            "required": ["resume", "job_posting"],
            "properties": {
                "resume": {"$ref": "#/$defs/resume"},
                "job_posting": {"$ref": "#/$defs/posting"},
            },
        }
    )
    for _, job_type, doc in BAD:
        if job_type == "cv_tailoring":
            assert shared.validate(doc) == NEW_INPUTS["cv_tailoring"].validate(doc)
    # in the schema's order, not the library's (which lists missing members first)
    assert _pairs(shared.validate(_cv(posting={"title": 1}))) == [
        ("input.job_posting.title", "must be a string"),
        ("input.job_posting.company", "is required"),
        ("input.job_posting.description", "is required"),
    ]


@pytest.mark.parametrize(
    ("rule", "value", "message"),
    [
        ({"type": "string", "minLength": 3}, "ab", "must be at least 3 characters"),
        ({"type": "array", "minItems": 1}, [], "must have at least 1 entry"),
        ({"type": "array", "uniqueItems": True}, [1, 1], "must not repeat an entry"),
        ({"type": "number", "exclusiveMinimum": 0}, 0, "must be more than 0"),
        ({"type": "number", "exclusiveMaximum": 1.5}, 2, "must be less than 1.5"),
        ({"type": "number", "multipleOf": 5}, 7, "must be a multiple of 5"),
        ({"const": "v1"}, "v2", 'must be "v1"'),
        ({"type": "object", "maxProperties": 1}, {"a": 1, "b": 2}, "must have at most 1 field"),
        ({"type": "boolean"}, "yes", "must be true or false"),
        ({"type": ["integer", "null"]}, "x", "must be a whole number or null"),
        ({"not": {}}, 1, 'does not satisfy the schema\'s "not" rule'),
    ],
)
def test_other_mapped_keywords(rule: Any, value: Any, message: str) -> None:
    schema = compile_schema({"type": "object", "properties": {"f": rule}})
    assert _pairs(schema.validate({"f": value})) == [("input.f", message)]


def test_a_false_subschema_is_reported_on_the_enclosing_object() -> None:
    """jsonschema 4.26 leaves the member's name out of the path of a ``false`` subschema's
    error; the violation still comes, one level up. ``{"not": {}}`` names the member."""
    schema = compile_schema({"type": "object", "properties": {"f": False}})
    assert _pairs(schema.validate({"f": 1})) == [("input", "is not allowed")]
