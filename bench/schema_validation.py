"""``python -m bench.schema_validation [--repeat 7]``: what validating a job's input costs.

``jobkit.schema`` as job_api runs it (the fastjsonschema gate, then jsonschema only for a
document the gate fails), its full jsonschema path alone (what every document went through
before the gate), raw jsonschema and raw fastjsonschema, on a realistic cv_tailoring input
(a résumé of 5 roles x 5 bullets, a 3,000-character posting) and on a noop input: the time
of one validation of a valid and of an invalid document, and of compiling the schema. The
schemas are the real ones (``jobtypes.CATALOG``). Runs in-process, no stack needed. Prints
a table; a measurement, not a test.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator

from jobkit.schema import compile_schema
from jobtypes import CATALOG

#: The hand-rolled ``Field`` validator these schemas replaced is gone (b1e5050); its last
#: figures, from this benchmark on the same inputs and machine (best of 7, five runs).
FIELD_VALIDATOR_NOTE = (
    "hand-rolled Field validator (removed; last measured): cv_tailoring 38-44 µs valid, "
    "45-53 µs invalid (9 reported); noop 0.8 µs"
)

_WORDS = [
    *("design", "build", "operate", "data", "pipelines", "python", "sql", "airflow", "dbt"),
    *("spark", "kafka", "streaming", "warehouse", "modelling", "quality", "testing"),
    *("observability", "cloud", "aws", "terraform", "teams", "mentoring"),
]


def realistic_input() -> dict[str, Any]:
    """A cv_tailoring input as a user sends it: 5 roles x 5 bullets, a 3,000-char posting."""
    roles = [
        {
            "title": f"Senior Data Engineer {i}",
            "company": f"Company {i} Ltd",
            "start": f"201{i}-01",
            "end": f"201{i + 1}-06",
            "bullets": [
                f"Led {j} migrations of {_WORDS[(i + j) % len(_WORDS)]} workloads, cutting "
                f"cost {10 + j * 5}% and run time {20 + i}% across {3 + j} teams"
                for j in range(5)
            ],
        }
        for i in range(5)
    ]
    description = " ".join(_WORDS[i % len(_WORDS)] for i in range(600))[:3000]
    return {
        "resume": {
            "name": "Ada Lovelace",
            "headline": "Data engineer, ten years of pipelines",
            "email": "ada@example.com",
            "phone": "+44 20 7946 0000",
            "location": "London",
            "summary": "Builds reliable data platforms. " * 10,
            "skills": _WORDS[:20],
            "experience": roles,
            "education": [
                {"degree": "MSc Computer Science", "institution": "UCL", "year": 2012.0},
                {"degree": "BSc Mathematics", "institution": "KCL", "year": "2010"},
            ],
        },
        "job_posting": {
            "title": "Staff Data Engineer",
            "company": "Acme",
            "description": description,
            "requirements": ["python", "sql", "airflow", "dbt", "spark", "kafka"],
            "nice_to_have": ["terraform", "aws"],
        },
    }


def invalid_input() -> dict[str, Any]:
    """The same with nine mistakes spread through it (a type, a blank, lengths, entries)."""
    doc = copy.deepcopy(realistic_input())
    resume, posting = doc["resume"], doc["job_posting"]
    resume["name"] = "  "
    resume["email"] = "e" * 400
    resume["skills"][3] = 7
    resume["experience"][1]["bullets"][2] = None
    del resume["experience"][2]["company"]
    resume["experience"][4]["title"] = ""
    resume["education"][0]["year"] = True
    posting["title"] = 42
    del posting["description"]
    return doc


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    valid_us: float
    invalid_us: float
    invalid_reports: int
    compile_ms: float


def per_call_us(fn: Callable[[], object], repeat: int) -> float:
    """The time of one call in microseconds, best of ``repeat`` runs of about 0.2 s: the
    least disturbed by whatever else the machine runs (as ``timeit`` advises)."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat, number)) / number * 1e6


def compile_ms(fn: Callable[[], object], repeat: int) -> float:
    """One compilation in milliseconds, best of ``repeat``."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - started) * 1e3)
    return min(runs)


def measure(repeat: int) -> list[Row]:
    good, bad = realistic_input(), invalid_input()
    schema: dict[str, Any] = dict(CATALOG["cv_tailoring"].input_schema)
    rows: list[Row] = []

    ours = compile_schema(schema)
    assert ours.ungated_because is None
    assert ours.validate(good) == []
    rows.append(
        Row(
            "jobkit.schema: gate, then jsonschema if it fails",
            per_call_us(lambda: ours.validate(good), repeat),
            per_call_us(lambda: ours.validate(bad), repeat),
            len(ours.validate(bad)),
            compile_ms(lambda: compile_schema(schema), repeat),
        )
    )
    rows.append(
        Row(
            "jobkit.schema: jsonschema path alone (before)",
            per_call_us(lambda: ours._full_violations(good), repeat),
            per_call_us(lambda: ours._full_violations(bad), repeat),
            len(ours._full_violations(bad)),
            0.0,
        )
    )

    raw = Draft202012Validator(schema)
    rows.append(
        Row(
            "jsonschema iter_errors, raw",
            per_call_us(lambda: list(raw.iter_errors(good)), repeat),
            per_call_us(lambda: list(raw.iter_errors(bad)), repeat),
            len(list(raw.iter_errors(bad))),
            compile_ms(lambda: Draft202012Validator(schema), repeat),
        )
    )
    rows.append(
        Row(
            "jsonschema check_schema (compile only)",
            0.0,
            0.0,
            0,
            compile_ms(lambda: Draft202012Validator.check_schema(schema), repeat),
        )
    )

    gate_schema = {**schema, "$schema": "http://json-schema.org/draft-07/schema#"}
    gate = fastjsonschema.compile(copy.deepcopy(gate_schema), use_default=False, use_formats=False)

    def first_error(doc: dict[str, Any]) -> int:
        try:
            gate(doc)
        except fastjsonschema.JsonSchemaValueException:
            return 1
        return 0

    assert first_error(good) == 0
    rows.append(
        Row(
            f"fastjsonschema {fastjsonschema.VERSION} raw (first error only)",
            per_call_us(lambda: first_error(good), repeat),
            per_call_us(lambda: first_error(bad), repeat),
            first_error(bad),
            compile_ms(
                lambda: fastjsonschema.compile(
                    copy.deepcopy(gate_schema), use_default=False, use_formats=False
                ),
                repeat,
            ),
        )
    )

    noop = compile_schema(CATALOG["noop"].input_schema)
    noop_good: dict[str, Any] = {"sleep_ms": 100}
    noop_bad: dict[str, Any] = {"sleep_ms": -1, "write": 7}
    assert noop.validate(noop_good) == []
    rows.append(
        Row(
            "noop input, gate then jsonschema",
            per_call_us(lambda: noop.validate(noop_good), repeat),
            per_call_us(lambda: noop.validate(noop_bad), repeat),
            len(noop.validate(noop_bad)),
            compile_ms(lambda: compile_schema(CATALOG["noop"].input_schema), repeat),
        )
    )
    rows.append(
        Row(
            "noop input, jsonschema path alone (before)",
            per_call_us(lambda: noop._full_violations(noop_good), repeat),
            per_call_us(lambda: noop._full_violations(noop_bad), repeat),
            len(noop._full_violations(noop_bad)),
            0.0,
        )
    )
    return rows


def render(rows: list[Row]) -> str:
    header = (
        f"{'validator':<48} {'valid µs':>9} {'invalid µs':>11} {'reported':>9} {'compile ms':>11}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        valid = f"{r.valid_us:9.1f}" if r.valid_us else f"{'-':>9}"
        invalid = f"{r.invalid_us:11.1f}" if r.invalid_us else f"{'-':>11}"
        reports = f"{r.invalid_reports:9d}" if r.invalid_us else f"{'-':>9}"
        compiled = f"{r.compile_ms:11.2f}" if r.compile_ms else f"{'-':>11}"
        lines.append(f"{r.name:<48} {valid} {invalid} {reports} {compiled}")
    lines.append(FIELD_VALIDATOR_NOTE)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.schema_validation")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per figure (7)")
    args = parser.parse_args(argv)
    sys.stdout.write(f"Python {sys.version.split()[0]}; best of {args.repeat} runs\n")
    sys.stdout.write(render(measure(args.repeat)) + "\n")


if __name__ == "__main__":
    main()
