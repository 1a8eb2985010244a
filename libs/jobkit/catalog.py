"""What a job type is: its steps, phases, progress marks, timeouts, retry policies and
input schema, and the catalogue that looks them up by name.

The job types themselves live in ``jobtypes/<name>/spec.py``, listed in
``jobtypes.CATALOG``: job_api plans jobs from it, the orchestrator drives them by it and
ai_worker runs a handler for each of its steps, so the three always agree.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from jobkit.errors import FieldViolation


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential back-off with full jitter, capped; ``max_attempts`` counts the first run."""

    max_attempts: int = 3
    initial_delay_s: float = 0.5
    multiplier: float = 2.0
    max_delay_s: float = 30.0

    def ceiling_s(self, attempt: int) -> float:
        """Upper bound of the delay after failed attempt number ``attempt`` (1-based)."""
        return min(self.max_delay_s, self.initial_delay_s * self.multiplier ** (attempt - 1))

    def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before the attempt after ``attempt``: uniform in [ceiling/2, ceiling].

        Half-jitter keeps retries of many jobs from stampeding together while still
        guaranteeing a minimum pause.
        """
        ceiling = self.ceiling_s(attempt)
        return ceiling / 2 + (rng or random).random() * ceiling / 2

    def allows_another(self, attempt: int) -> bool:
        return attempt < self.max_attempts


#: Steps that only compute: a failure is a bug or a lost worker, so retry soon, briefly.
COMPUTE_RETRY = RetryPolicy(max_attempts=3, initial_delay_s=0.2, max_delay_s=2.0)
#: Steps that ask a model: rate limits and outages pass in seconds to a minute.
MODEL_RETRY = RetryPolicy(max_attempts=4, initial_delay_s=1.0, max_delay_s=60.0)


@dataclass(frozen=True, slots=True)
class StepSpec:
    name: str
    #: Shown to users while the step runs, e.g. "Generating cover letter...".
    phase: str
    #: Job progress when the step starts (0-100); the next step's mark is where it ends.
    progress_start: int
    timeout_s: float = 120.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True, slots=True)
class Field:
    """One field of an input schema."""

    kind: type | tuple[type, ...]
    required: bool = False
    #: For lists: the schema of each item (a kind, or a nested object schema).
    items: type | Mapping[str, Field] | None = None
    #: For objects: the nested schema.
    fields: Mapping[str, Field] | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        float: "a number",
        int: "a number",
        bool: "true or false",
        dict: "an object",
        list: "a list",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def validate(
    doc: Mapping[str, Any], schema: Mapping[str, Field], path: str
) -> list[FieldViolation]:
    """Check ``doc`` against ``schema``; returns every violation, each naming its field path."""
    violations: list[FieldViolation] = []
    for name, spec in schema.items():
        where = f"{path}.{name}"
        if name not in doc or doc[name] is None:
            if spec.required:
                violations.append(FieldViolation(where, "is required"))
            continue
        violations.extend(_check(doc[name], spec, where))
    return violations


def _check(value: Any, spec: Field, where: str) -> list[FieldViolation]:
    kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
    # Struct numbers arrive as float; bool is an int subclass and must not pass as a number.
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        return [FieldViolation(where, f"must be {_kind_name(spec.kind)}")]
    if isinstance(value, float | int) and not isinstance(value, bool):
        if spec.minimum is not None and value < spec.minimum:
            return [FieldViolation(where, f"must be at least {spec.minimum:g}")]
        if spec.maximum is not None and value > spec.maximum:
            return [FieldViolation(where, f"must be at most {spec.maximum:g}")]
    if isinstance(value, str) and spec.required and not value.strip():
        return [FieldViolation(where, "must not be empty")]
    if (
        spec.max_length is not None
        and isinstance(value, str | list)
        and len(value) > spec.max_length
    ):
        return [
            FieldViolation(
                where,
                f"must have at most {spec.max_length} entries"
                if isinstance(value, list)
                else f"must be at most {spec.max_length} characters",
            )
        ]
    if isinstance(value, dict) and spec.fields is not None:
        return validate(value, spec.fields, where)
    if isinstance(value, list) and spec.items is not None:
        out: list[FieldViolation] = []
        for i, item in enumerate(value):
            if isinstance(spec.items, Mapping):
                if not isinstance(item, dict):
                    out.append(FieldViolation(f"{where}[{i}]", "must be an object"))
                else:
                    out.extend(validate(item, spec.items, f"{where}[{i}]"))
            elif not isinstance(item, spec.items):
                out.append(FieldViolation(f"{where}[{i}]", f"must be {_kind_name(spec.items)}"))
        return out
    return []


@dataclass(frozen=True, slots=True)
class JobTypeSpec:
    name: str
    description: str
    steps: tuple[StepSpec, ...]
    input_schema: Mapping[str, Field]
    #: Phase text once the job has succeeded.
    done_phase: str = "Done"

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    def step(self, name: str) -> StepSpec:
        for spec in self.steps:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def progress_at(self, step_index: int, percent_of_step: int) -> int:
        """Job progress when step ``step_index`` is ``percent_of_step`` % done."""
        start = self.steps[step_index].progress_start
        end = self.steps[step_index + 1].progress_start if step_index + 1 < len(self.steps) else 100
        percent = max(0, min(100, percent_of_step))
        return min(99, start + (end - start) * percent // 100)

    def validate_input(self, doc: Mapping[str, Any]) -> list[FieldViolation]:
        return validate(doc, self.input_schema, "input")


class Catalog(Mapping[str, JobTypeSpec]):
    """The registered job types, by name, in registration order."""

    def __init__(self, specs: Iterable[JobTypeSpec]) -> None:
        self._specs: dict[str, JobTypeSpec] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise ValueError(f"job type {spec.name!r} is registered twice")
            self._specs[spec.name] = spec

    def __getitem__(self, name: str) -> JobTypeSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def specs(self) -> tuple[JobTypeSpec, ...]:
        return tuple(self._specs.values())
