"""Job input schemas as JSON Schema (``jobkit.schema``): the verdicts, field paths and
wording clients have always had, and a fastjsonschema gate that only ever agrees with the
full (jsonschema) validator.

The schemas are the real ones (``jobtypes.CATALOG[...].input_schema``, the résumé and
posting from ``resume.schema``). The expected violations below are literals: they were
produced by the hand-rolled ``Field`` validator these schemas replaced (``jobkit.catalog``
before b1e5050), run on the same inputs, so the wording clients see is pinned to it.
"""

from __future__ import annotations

import copy
import json
import random
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jobkit.errors import ConfigError, FieldViolation
from jobkit.schema import DRAFT_2020_12, NON_BLANK, InputSchema, compile_schema
from jobtypes import CATALOG
from resume.schema import POSTING_SCHEMA, RESUME_SCHEMA

DRAFT = DRAFT_2020_12

INPUTS: Mapping[str, InputSchema] = {
    spec.name: compile_schema(spec.input_schema) for spec in CATALOG.specs()
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
    ("interview_prep", {"resume": RESUME, "job_posting": POSTING, "questions": 3.0}),
    ("noop", {}),
    ("noop", {"sleep_ms": 10, "fail_attempts": 1.0, "write": "hi", "tokens": 1_000_000}),
    ("noop", {"sleep_ms": None}),
]

Pairs = list[tuple[str, str]]

BAD: list[tuple[str, str, Any, Pairs]] = [
    # (what, job type, input, the violations the Field validator reported for it)
    (
        "nothing at all",
        "cv_tailoring",
        {},
        [("input.resume", "is required"), ("input.job_posting", "is required")],
    ),
    (
        "null for required",
        "cv_tailoring",
        {"resume": None, "job_posting": None},
        [("input.resume", "is required"), ("input.job_posting", "is required")],
    ),
    (
        "missing and mistyped, nested",
        "cv_tailoring",
        {"resume": {"skills": "python", "experience": [{"title": "Dev"}]}, "job_posting": {}},
        [
            ("input.resume.name", "is required"),
            ("input.resume.skills", "must be a list"),
            ("input.resume.experience[0].company", "is required"),
            ("input.job_posting.title", "is required"),
            ("input.job_posting.company", "is required"),
            ("input.job_posting.description", "is required"),
        ],
    ),
    (
        "not objects",
        "cv_tailoring",
        {"resume": [], "job_posting": "x"},
        [("input.resume", "must be an object"), ("input.job_posting", "must be an object")],
    ),
    (
        "name blank",
        "cv_tailoring",
        _cv(_resume(name="   ")),
        [("input.resume.name", "must not be empty")],
    ),
    (
        "name empty",
        "cv_tailoring",
        _cv(_resume(name="")),
        [("input.resume.name", "must not be empty")],
    ),
    (
        "name too long",
        "cv_tailoring",
        _cv(_resume(name="x" * 201)),
        [("input.resume.name", "must be at most 200 characters")],
    ),
    (
        "name blank and too long",
        "cv_tailoring",
        _cv(_resume(name=" " * 300)),
        [("input.resume.name", "must not be empty")],
    ),
    (
        "name a number",
        "cv_tailoring",
        _cv(_resume(name=5)),
        [("input.resume.name", "must be a string")],
    ),
    (
        "name a bool",
        "cv_tailoring",
        _cv(_resume(name=True)),
        [("input.resume.name", "must be a string")],
    ),
    ("name null", "cv_tailoring", _cv(_resume(name=None)), [("input.resume.name", "is required")]),
    (
        "skill entries",
        "cv_tailoring",
        _cv(_resume(skills=["a", 3, None, True, {}])),
        [
            ("input.resume.skills[1]", "must be a string"),
            ("input.resume.skills[2]", "must be a string"),
            ("input.resume.skills[3]", "must be a string"),
            ("input.resume.skills[4]", "must be a string"),
        ],
    ),
    (
        "too many skills",
        "cv_tailoring",
        _cv(_resume(skills=["s"] * 500 + [1])),
        [("input.resume.skills", "must have at most 500 entries")],
    ),
    (
        "email too long",
        "cv_tailoring",
        _cv(_resume(email="e" * 321)),
        [("input.resume.email", "must be at most 320 characters")],
    ),
    (
        "summary an object",
        "cv_tailoring",
        _cv(_resume(summary={"a": 1})),
        [("input.resume.summary", "must be a string")],
    ),
    (
        "experience not a list",
        "cv_tailoring",
        _cv(_resume(experience="x")),
        [("input.resume.experience", "must be a list")],
    ),
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
        [
            ("input.resume.experience[0]", "must be an object"),
            ("input.resume.experience[1]", "must be an object"),
            ("input.resume.experience[2].bullets[0]", "must be a string"),
            ("input.resume.experience[2].bullets[2]", "must be a string"),
            ("input.resume.experience[3].title", "must not be empty"),
            ("input.resume.experience[3].company", "must be a string"),
            ("input.resume.experience[3].start", "must be at most 64 characters"),
            ("input.resume.experience[4].bullets", "must be a list"),
            ("input.resume.experience[5].title", "is required"),
            ("input.resume.experience[5].company", "is required"),
        ],
    ),
    (
        "too many roles",
        "cv_tailoring",
        _cv(_resume(experience=[{"title": 1}] * 101)),
        [("input.resume.experience", "must have at most 100 entries")],
    ),
    (
        "too many bullets",
        "cv_tailoring",
        _cv(_resume(experience=[{"bullets": ["b"] * 101}])),
        [
            ("input.resume.experience[0].title", "is required"),
            ("input.resume.experience[0].company", "is required"),
            ("input.resume.experience[0].bullets", "must have at most 100 entries"),
        ],
    ),
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
        [
            ("input.resume.education[0].year", "must be a string or a number"),
            ("input.resume.education[1].year", "must be at most 16 characters"),
            ("input.resume.education[2].year", "must be a string or a number"),
            ("input.resume.education[3].degree", "must not be empty"),
        ],
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
        [
            ("input.job_posting.company", "must not be empty"),
            ("input.job_posting.description", "must be at most 100000 characters"),
            ("input.job_posting.requirements[0]", "must be a string"),
            ("input.job_posting.nice_to_have", "must be a list"),
        ],
    ),
    (
        "posting title mistyped, the rest missing",
        "cv_tailoring",
        _cv(posting={"title": 1}),
        [
            ("input.job_posting.title", "must be a string"),
            ("input.job_posting.company", "is required"),
            ("input.job_posting.description", "is required"),
        ],
    ),
    (
        "posting blank description",
        "cv_tailoring",
        _cv(posting={**POSTING, "description": "\n"}),
        [("input.job_posting.description", "must not be empty")],
    ),
    (
        "too many requirements",
        "cv_tailoring",
        _cv(posting={**POSTING, "requirements": ["r"] * 201}),
        [("input.job_posting.requirements", "must have at most 200 entries")],
    ),
    (
        "both halves wrong",
        "cv_tailoring",
        _cv(_resume(name=""), {**POSTING, "title": 1}),
        [
            ("input.resume.name", "must not be empty"),
            ("input.job_posting.title", "must be a string"),
        ],
    ),
    ("resume missing", "resume_improvement", {}, [("input.resume", "is required")]),
    (
        "resume a string",
        "resume_improvement",
        {"resume": "my cv"},
        [("input.resume", "must be an object")],
    ),
    (
        "role missing",
        "skill_gap_analysis",
        {"resume": RESUME},
        [("input.target_role", "is required")],
    ),
    (
        "role empty",
        "skill_gap_analysis",
        {"resume": RESUME, "target_role": ""},
        [("input.target_role", "must not be empty")],
    ),
    (
        "role too long",
        "skill_gap_analysis",
        {"resume": RESUME, "target_role": "r" * 201},
        [("input.target_role", "must be at most 200 characters")],
    ),
    (
        "hours below",
        "skill_gap_analysis",
        {"resume": RESUME, "target_role": "r", "hours_per_week": 0.5},
        [("input.hours_per_week", "must be at least 1")],
    ),
    (
        "hours above",
        "skill_gap_analysis",
        {"resume": RESUME, "target_role": "r", "hours_per_week": 81},
        [("input.hours_per_week", "must be at most 80")],
    ),
    (
        "hours a string, skills mistyped",
        "skill_gap_analysis",
        {"resume": RESUME, "target_role": "r", "hours_per_week": "6", "target_skills": [1]},
        [
            ("input.target_skills[0]", "must be a string"),
            ("input.hours_per_week", "must be a number"),
        ],
    ),
    (
        "questions below",
        "interview_prep",
        {"resume": RESUME, "job_posting": POSTING, "questions": 0},
        [("input.questions", "must be at least 1")],
    ),
    (
        "questions above",
        "interview_prep",
        {"resume": RESUME, "job_posting": POSTING, "questions": 10.5},
        [("input.questions", "must be at most 10")],
    ),
    (
        "questions a bool, posting title blank",
        "interview_prep",
        {"resume": RESUME, "job_posting": {**POSTING, "title": " "}, "questions": False},
        [
            ("input.job_posting.title", "must not be empty"),
            ("input.questions", "must be a number"),
        ],
    ),
    (
        "posting missing",
        "interview_prep",
        {"resume": {"name": "A"}},
        [("input.job_posting", "is required")],
    ),
    ("sleep negative", "noop", {"sleep_ms": -1}, [("input.sleep_ms", "must be at least 0")]),
    (
        "sleep too long",
        "noop",
        {"sleep_ms": 600_001},
        [("input.sleep_ms", "must be at most 600000")],
    ),
    (
        "attempts a word",
        "noop",
        {"fail_attempts": "two"},
        [("input.fail_attempts", "must be a number")],
    ),
    (
        "attempts a bool",
        "noop",
        {"fail_attempts": True},
        [("input.fail_attempts", "must be a number")],
    ),
    (
        "attempts a list",
        "noop",
        {"fail_attempts": [1]},
        [("input.fail_attempts", "must be a number")],
    ),
    (
        "write too long",
        "noop",
        {"write": "w" * 20_001},
        [("input.write", "must be at most 20000 characters")],
    ),
    (
        "all noop fields",
        "noop",
        {"sleep_ms": -5, "fail_attempts": 101, "write": 7},
        [
            ("input.sleep_ms", "must be at least 0"),
            ("input.fail_attempts", "must be at most 100"),
            ("input.write", "must be a string"),
        ],
    ),
]


def _pairs(violations: list[FieldViolation]) -> list[tuple[str, str]]:
    return [(v.field, v.description) for v in violations]


@pytest.mark.parametrize(("job_type", "doc"), GOOD)
def test_good_inputs_have_no_violations(job_type: str, doc: dict[str, Any]) -> None:
    schema = INPUTS[job_type]
    assert schema.validate(doc) == []
    assert schema._full_violations(doc) == []  # not only the gate's word for it
    assert CATALOG[job_type].validate_input(doc) == []


@pytest.mark.parametrize(
    ("what", "job_type", "doc", "expected"), BAD, ids=[case[0] for case in BAD]
)
def test_bad_inputs_get_the_violations_the_field_validator_reported(
    what: str, job_type: str, doc: Any, expected: Pairs
) -> None:
    assert _pairs(INPUTS[job_type].validate(doc)) == expected
    assert _pairs(CATALOG[job_type].validate_input(doc)) == expected


def test_the_wording_is_todays() -> None:
    schema = INPUTS["cv_tailoring"]
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
    assert _pairs(INPUTS["noop"].validate({"sleep_ms": -1, "fail_attempts": 101})) == [
        ("input.sleep_ms", "must be at least 0"),
        ("input.fail_attempts", "must be at most 100"),
    ]


def test_a_bound_reads_as_written_where_the_old_one_used_an_exponent() -> None:
    """The one deliberate difference: the old validator formatted bounds with ``:g``."""
    # The Field validator said "must be at most 1e+06".
    doc = {"tokens": 1_000_001}
    assert _pairs(INPUTS["noop"].validate(doc)) == [("input.tokens", "must be at most 1000000")]


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
    assert _pairs(INPUTS["noop"].validate(["x"])) == [("input", "must be an object")]


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
    schema = CATALOG["noop"].input_schema
    assert compile_schema(schema).schema is schema


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
            "$defs": {"resume": RESUME_SCHEMA, "posting": POSTING_SCHEMA},
            "type": "object",
            "required": ["resume", "job_posting"],
            "properties": {
                "resume": {"$ref": "#/$defs/resume"},
                "job_posting": {"$ref": "#/$defs/posting"},
            },
        }
    )
    assert shared.ungated_because is None
    for _, job_type, doc, expected in BAD:
        if job_type == "cv_tailoring":
            assert _pairs(shared.validate(doc)) == expected
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


# --- The gate ---------------------------------------------------------------------------
# validate() asks fastjsonschema first and returns [] when it passes; only when it fails
# does jsonschema run. It is sound only if the gate never passes a document jsonschema
# fails, so: the keywords it is given are listed, and everything else goes ungated.


def test_every_real_schema_is_gated() -> None:
    for name, schema in INPUTS.items():
        assert schema.ungated_because is None, name


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        # semantics that differ between draft-07 (what the gate runs) and 2020-12
        ({"type": "array", "prefixItems": [{"type": "string"}]}, "'prefixItems'"),
        ({"type": "object", "unevaluatedProperties": False}, "'unevaluatedProperties'"),
        ({"type": "object", "dependentRequired": {"a": ["b"]}}, "'dependentRequired'"),
        ({"$ref": "#/$defs/text", "maxLength": 3}, "sibling keywords ['maxLength']"),
        ({"$ref": "https://example.com/text.json"}, "not a local JSON pointer"),
        ({"$ref": "#text"}, "not a local JSON pointer"),
        ({"$ref": "#/$defs/text/maxLength"}, "does not point at a scanned subschema"),
        ({"$ref": "#/definitions/text"}, "does not point at a scanned subschema"),
        ({"$id": "https://example.com/f", "type": "string"}, "'$id'"),
        ({"$anchor": "f", "type": "string"}, "'$anchor'"),
        # the same in both drafts, but not (yet) checked to read the same in both libraries
        ({"not": {"type": "string"}}, "'not'"),
        ({"anyOf": [{"type": "string"}, {"type": "number"}]}, "'anyOf'"),
        ({"type": "array", "uniqueItems": True}, "'uniqueItems'"),
        ({"type": "number", "multipleOf": 0.5}, "'multipleOf'"),
        ({"type": "object", "patternProperties": {"^x": {}}}, "'patternProperties'"),
        # "$" reads "\Z" to fastjsonschema: stricter, except under a negation
        ({"type": "string", "pattern": "^(?!draft$)"}, "$ under a negation"),
    ],
)
def test_a_keyword_off_the_gates_list_leaves_the_schema_ungated(rule: Any, why: str) -> None:
    schema = compile_schema(
        {
            "$defs": {"text": {"type": "string"}},
            "type": "object",
            "properties": {"f": rule},
        }
    )
    assert schema.ungated_because is not None
    assert why in schema.ungated_because
    assert schema._gate_verdict({"f": "draft"}) is None


def test_defs_and_local_refs_are_gated_and_checked() -> None:
    schema = compile_schema(
        {
            "$defs": {"role": {"type": "object", "required": ["title"]}},
            "type": "object",
            "properties": {"roles": {"type": "array", "items": {"$ref": "#/$defs/role"}}},
        }
    )
    assert schema.ungated_because is None
    assert schema._gate_verdict({"roles": [{"title": "t"}]}) is True
    assert schema._gate_verdict({"roles": [{}]}) is False
    assert _pairs(schema.validate({"roles": [{}]})) == [("input.roles[0].title", "is required")]


def test_the_gate_reads_numbers_as_jsonschema_does() -> None:
    """Struct numbers are floats: ``integer`` takes 3.0; bools are never numbers."""
    schema = compile_schema(
        {
            "type": "object",
            "properties": {
                "i": {"type": "integer", "minimum": 1},
                "n": {"type": "number", "exclusiveMaximum": 5},
                "either": {"type": ["string", "number"]},
                "flag": {"type": "boolean"},
                "one": {"enum": [1, "one"]},
                "no": {"const": False},
            },
        }
    )
    assert schema.ungated_because is None
    for doc, valid in [
        ({"i": 3}, True),
        ({"i": 3.0}, True),
        ({"i": 3.5}, False),
        ({"i": True}, False),
        ({"i": 0.0}, False),
        ({"n": 4.99}, True),
        ({"n": 5}, False),
        ({"n": False}, False),
        ({"either": 1.5}, True),
        ({"either": True}, False),
        ({"flag": False}, True),
        ({"flag": 0}, False),
        ({"one": 1.0}, True),
        ({"one": True}, False),
        ({"no": False}, True),
        ({"no": 0}, False),
        ({"no": 0.0}, False),
    ]:
        assert schema._gate_verdict(doc) is valid, doc
        assert (schema._full_violations(doc) == []) is valid, doc
        assert (schema.validate(doc) == []) is valid, doc


def test_nulls_are_left_out_before_the_gate_too() -> None:
    schema = INPUTS["skill_gap_analysis"]
    doc = {"resume": {**RESUME, "headline": None}, "target_role": "r", "hours_per_week": None}
    assert schema._gate_verdict(doc) is True
    assert schema.validate(doc) == []
    assert schema._gate_verdict({"resume": RESUME, "target_role": None}) is False
    # a null list entry is an entry like any other
    assert (
        schema._gate_verdict({"resume": RESUME, "target_role": "r", "target_skills": [None]})
        is False
    )


def test_a_tuple_goes_past_the_gate() -> None:
    """fastjsonschema takes a tuple for an array, jsonschema does not: a document holding
    one is never put to the gate (Struct and JSON never make one)."""
    schema = INPUTS["cv_tailoring"]
    doc = _cv(_resume(skills=("python", "sql")))
    assert schema._gate_verdict(doc) is None
    assert _pairs(schema.validate(doc)) == [("input.resume.skills", "must be a list")]


def test_a_dollar_in_a_pattern_makes_the_gate_stricter_and_jsonschema_decides() -> None:
    """fastjsonschema reads "$" as "\\Z": "AB\\n" fails the gate but passes jsonschema
    (Python's "$" matches before a final newline); validate() says what jsonschema says."""
    schema = compile_schema({"type": "object", "properties": {"c": {"pattern": "^[A-Z]+$"}}})
    assert schema.ungated_because is None
    assert schema._gate_verdict({"c": "AB\n"}) is False
    assert schema.validate({"c": "AB\n"}) == []
    assert _pairs(schema.validate({"c": "ab"})) == [("input.c", "must match the pattern ^[A-Z]+$")]


def test_the_gate_writes_no_default_into_the_document_nor_into_the_schema() -> None:
    rule = {"type": "object", "properties": {"n": {"type": "number", "default": 6}}}
    kept = copy.deepcopy(rule)
    schema = compile_schema(rule)
    doc: dict[str, Any] = {}
    assert schema.validate(doc) == []
    assert doc == {}
    assert rule == kept


# --- The gate agrees with jsonschema: a property test ------------------------------------
# Valid documents are mutated at random (fixed seeds): members dropped or set to null,
# types swapped (bool, 0/1, 3.0, 3.5, strings, lists, objects), strings and lists at and
# just past their bounds, blank strings, subtrees moved elsewhere, unknown members added.
# For every one the gate and jsonschema must say the same valid / invalid, and validate()
# must report exactly what jsonschema reports.

# Every keyword the gate accepts, in one schema.
EVERY_GATED_KEYWORD: dict[str, Any] = {
    "$schema": DRAFT,
    "$comment": "not a real job type: the gate's keywords, each one at least once",
    "$defs": {
        "role": {
            "type": "object",
            "required": ["title"],
            "properties": {
                "title": {"type": "string", "minLength": 1, "pattern": NON_BLANK, "maxLength": 8},
                "level": {"type": "integer", "minimum": 1, "maximum": 5},
            },
            "additionalProperties": False,
        }
    },
    "title": "everything",
    "type": "object",
    "required": ["kind", "count"],
    "properties": {
        "kind": {"enum": ["a", "b", 1, True, [1, "x"], {"k": 0}]},
        "version": {"const": 2},
        "off": {"const": False},
        "count": {"type": "integer", "minimum": 0, "exclusiveMaximum": 10},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 0.5},
        "code": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]", "minLength": 4, "maxLength": 6},
        "email": {"type": "string", "format": "email", "maxLength": 12},
        "tags": {
            "type": "array",
            "items": {"type": "string", "maxLength": 3},
            "minItems": 1,
            "maxItems": 3,
        },
        "roles": {"type": "array", "items": {"$ref": "#/$defs/role"}, "maxItems": 3},
        "main": {"$ref": "#/$defs/role", "description": "an annotation beside $ref"},
        "extra": {"type": "object", "additionalProperties": {"type": ["integer", "boolean"]}},
        "empty": {"type": "array", "items": False},
        "anything": True,
        "never": False,
        "year": {"type": ["string", "number"], "maxLength": 4},
    },
}

EVERY_GATED_KEYWORD_SEEDS: list[dict[str, Any]] = [
    {"kind": "a", "count": 0},
    {
        "kind": [1, "x"],
        "version": 2.0,
        "off": False,
        "count": 9.0,
        "ratio": 1,
        "code": "AB-1",
        "email": "not an email",
        "tags": ["x", "yz"],
        "roles": [{"title": "lead", "level": 5}, {"title": "t"}],
        "main": {"title": "boss", "level": 1.0},
        "extra": {"a": 1, "b": True},
        "empty": [],
        "anything": {"x": [None]},
        "year": "1999",
    },
    {"kind": {"k": 0}, "count": 3, "year": 1999.5, "tags": ["abc"], "extra": {}},
]

_EXAMPLES = Path(__file__).resolve().parents[2] / "jobtypes"


def _seeds(job_type: str) -> list[Any]:
    example = json.loads((_EXAMPLES / job_type / "example.json").read_text())["input"]
    return [example, *(doc for name, doc in GOOD if name == job_type)]


@dataclass
class _Bounds:
    """String lengths, list lengths, numbers and constants a schema names, with their
    neighbours: the values worth trying."""

    lengths: set[int] = field(default_factory=set)
    counts: set[int] = field(default_factory=set)
    numbers: set[float] = field(default_factory=set)
    constants: list[Any] = field(default_factory=list)

    def add(self, schema: Any) -> _Bounds:
        if isinstance(schema, list):
            for subschema in schema:
                self.add(subschema)
        if not isinstance(schema, dict):
            return self
        for keyword, value in schema.items():
            if keyword in ("enum", "const"):
                self.constants.extend(value if keyword == "enum" else [value])
            elif not isinstance(value, int | float) or isinstance(value, bool):
                self.add(value)  # subschemas, maps of them
            elif keyword in ("minLength", "maxLength"):
                self.lengths.update((max(0, int(value) - 1), int(value), int(value) + 1))
            elif keyword in ("minItems", "maxItems"):
                self.counts.update((max(0, int(value) - 1), int(value), int(value) + 1))
            elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                self.numbers.update((value - 1, value - 0.5, value, value + 0.5, value + 1))
        return self


class _Mutator:
    """Random changes to a JSON document, from values the schema makes interesting."""

    PLAIN: tuple[Any, ...] = (
        *(True, False, 0, 1, -1, 0.0, 1.0, 3, 3.0, 3.5, -0.5, 1e6 + 1, 123456789012345678),
        *("", " ", "\t\n", "x", "3", "AB-12", "a\n"),
        *([], {}, [1], ["x"], [None], [True], {"x": 1}, {"title": "t"}, [{"title": " "}]),
    )

    def __init__(self, schema: Any, seeds: list[Any], rng: random.Random) -> None:
        self.rng = rng
        self.seeds = seeds
        bounds = _Bounds().add(schema)
        self.lengths = sorted(bounds.lengths)
        self.counts = sorted(bounds.counts)
        self.numbers = sorted(bounds.numbers)
        self.constants = bounds.constants

    def value(self, doc: Any) -> Any:
        rng = self.rng
        pick = rng.randrange(8)
        if pick == 0:
            return rng.choice(self.PLAIN)
        if pick == 1 and self.lengths:
            return rng.choice(("x", " ", "é")) * rng.choice(self.lengths)
        if pick == 2 and self.counts:
            return [rng.choice(("s", "t"))] * rng.choice(self.counts)
        if pick == 3 and self.numbers:
            number = rng.choice(self.numbers)
            return float(number) if rng.random() < 0.5 else number
        if pick == 4 and self.constants:
            return copy.deepcopy(rng.choice(self.constants))
        if pick == 5:  # a subtree of this document or of a seed, moved here
            nodes = list(_nodes(rng.choice([doc, *self.seeds])))
            return copy.deepcopy(rng.choice(nodes)[1])
        if pick == 6:
            return [copy.deepcopy(rng.choice(self.PLAIN)) for _ in range(rng.randrange(1, 4))]
        return rng.choice((True, False, 1, 0, 1.0, 3.0))

    def mutate(self, doc: Any) -> Any:
        rng = self.rng
        nodes = list(_nodes(doc))
        path, node = rng.choice(nodes)
        op = rng.randrange(10)
        if not path:  # the root itself
            return self.value(doc) if op == 0 else doc
        parent = _at(doc, path[:-1])
        key = path[-1]
        if op <= 1:  # drop
            del parent[key]
        elif op == 2:  # null
            parent[key] = None
        elif op <= 5:  # another value, of any type
            parent[key] = self.value(doc)
        elif op == 6 and isinstance(node, str):  # blank, or as long as a bound
            longer = (node or "x") * (1 + max(self.lengths, default=1) // max(1, len(node)))
            parent[key] = rng.choice(("", "  ", node + "\n", longer[: rng.choice(self.lengths)]))
        elif op == 7 and isinstance(node, list) and node and self.counts:  # as many as a bound
            count = rng.choice(self.counts)
            parent[key] = (node * (1 + count // len(node)))[:count]
        elif op == 8 and isinstance(node, dict):  # a member more
            name = rng.choice(("title", "name", "level", "year", "unknown", "kind", "tags"))
            node[name] = self.value(doc)
        elif op == 9 and rng.random() < 0.1 and isinstance(node, list):
            parent[key] = tuple(node)  # never sent by a client: the gate must step aside
        else:
            parent[key] = self.value(doc)
        return doc


def _nodes(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, doc
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _nodes(value, (*path, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from _nodes(value, (*path, index))


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


MUTANTS_PER_SCHEMA = 800

CONSISTENCY_CASES: list[tuple[str, Any, list[Any]]] = [
    *((spec.name, spec.input_schema, _seeds(spec.name)) for spec in CATALOG.specs()),
    ("every gated keyword", EVERY_GATED_KEYWORD, EVERY_GATED_KEYWORD_SEEDS),
]


@pytest.mark.parametrize(
    ("name", "rule", "seeds"), CONSISTENCY_CASES, ids=[case[0] for case in CONSISTENCY_CASES]
)
def test_the_gate_and_jsonschema_agree_on_mutated_documents(
    name: str, rule: Any, seeds: list[Any]
) -> None:
    schema = compile_schema(rule)
    assert schema.ungated_because is None
    mutator = _Mutator(rule, seeds, random.Random(zlib.crc32(name.encode())))
    counts = {"valid": 0, "invalid": 0, "ungated": 0}
    for n in range(MUTANTS_PER_SCHEMA):
        doc = copy.deepcopy(seeds[n % len(seeds)])
        for _ in range(1 + n % 3):
            doc = mutator.mutate(doc)
        full = schema._full_violations(doc)
        gate = schema._gate_verdict(doc)
        if gate is None:
            counts["ungated"] += 1
        else:
            assert gate is (full == []), (
                f"{name} #{n}: gate says {'valid' if gate else 'invalid'}, jsonschema "
                f"{_pairs(full) or 'valid'}: {json.dumps(doc, default=repr)[:2000]}"
            )
        assert schema.validate(doc) == full
        counts["valid" if not full else "invalid"] += 1
    # enough of each for the agreement to mean something
    assert counts["valid"] >= MUTANTS_PER_SCHEMA // 10, counts
    if any(len(list(_nodes(seed))) > 1 for seed in seeds):
        assert counts["invalid"] >= MUTANTS_PER_SCHEMA // 3, counts
    else:
        # A type that takes no input (data_export's {}): only the root can change, and
        # a tenth of the mutants do.
        assert counts["invalid"] >= MUTANTS_PER_SCHEMA // 10, counts
