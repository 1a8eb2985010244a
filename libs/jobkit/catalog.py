"""What a job type is: its steps, phases, progress marks, timeouts, retry policies and
input schema, and the catalogue that looks them up by name.

The job types themselves live in ``jobtypes/<name>/spec.py``, listed in
``jobtypes.CATALOG``: job_api plans jobs from it, the orchestrator drives them by it and
ai_worker runs a handler for each of its steps, so the three always agree.

A type's step graph is versioned (``JobTypeSpec.version``): a job records the version it
was created with, and the orchestrator decides it by that version's spec to its end, so a
deploy that changes a type's steps leaves running jobs on the graph they started with. A
spec keeps the versions whose jobs may still run in ``previous``; ``Catalog.spec`` finds
one by version.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobkit.errors import FieldViolation
from jobkit.schema import DRAFT_2020_12, NON_BLANK, InputSchema, compile_schema


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
    #: The step's mark on the job's progress bar (0-100): its share of the bar runs from
    #: here to the next step's mark (100 after the last), filled as the step reports.
    progress_start: int
    timeout_s: float = 120.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: The steps that must succeed before this one runs; ``None``: the step listed before
    #: it (none for the first), a straight line. Steps waiting for the same ones run in
    #: parallel. Each must be listed before this step, so the list is an order they can run
    #: in.
    after: tuple[str, ...] | None = None
    #: Shown while the step waits for a person's answer (``StepContext.request_input``).
    waiting_phase: str = "Waiting for your input..."


def combined_phase(phases: Sequence[str]) -> str:
    """One phase for steps running together: "Generating tailored CV..." and "Generating
    cover letter..." read "Generating tailored CV and cover letter..."; phases that do not
    share their first word are joined whole ("A, B and C...")."""
    phases = list(dict.fromkeys(phases))
    if len(phases) == 1:
        return phases[0]
    bare = [p.rstrip(".").rstrip("…").strip() for p in phases]
    first_words = {p.split(" ", 1)[0] for p in bare}
    if len(first_words) == 1 and all(" " in p for p in bare):
        bare = [bare[0], *(p.split(" ", 1)[1] for p in bare[1:])]
    # Mid-sentence, a word keeps its capital only if it is a name or an acronym ("CV").
    bare = [bare[0], *(_mid_sentence(p) for p in bare[1:])]
    return f"{', '.join(bare[:-1])} and {bare[-1]}..."


def _mid_sentence(phrase: str) -> str:
    word = phrase.split(" ", 1)[0]
    return phrase[:1].lower() + phrase[1:] if len(word) > 1 and word[1:].islower() else phrase


# Fragments of input schemas, as plain JSON Schema (2020-12): what most fields are.


def text(max_length: int, *, required: bool = False, description: str = "") -> dict[str, Any]:
    """A string of at most ``max_length`` characters; ``required`` ones must not be blank
    (the ``required`` list of the enclosing object says it must be present)."""
    schema: dict[str, Any] = {"type": "string", "maxLength": max_length}
    if required:
        schema |= {"minLength": 1, "pattern": NON_BLANK}
    return schema | ({"description": description} if description else {})


def texts(max_items: int, *, description: str = "") -> dict[str, Any]:
    """A list of at most ``max_items`` strings."""
    schema = {"type": "array", "items": {"type": "string"}, "maxItems": max_items}
    return schema | ({"description": description} if description else {})


def number(minimum: float, maximum: float, *, description: str = "") -> dict[str, Any]:
    """A number in [``minimum``, ``maximum``]; Struct numbers are floats, so no "integer"."""
    schema = {"type": "number", "minimum": minimum, "maximum": maximum}
    return schema | ({"description": description} if description else {})


def obj(
    properties: Mapping[str, Mapping[str, Any]],
    required: Sequence[str] = (),
    *,
    description: str = "",
) -> dict[str, Any]:
    """An object with these members (others allowed, as clients have always sent them)."""
    schema: dict[str, Any] = {"type": "object", "properties": dict(properties)}
    if required:
        schema["required"] = list(required)
    return schema | ({"description": description} if description else {})


@dataclass(frozen=True, slots=True)
class JobTypeSpec:
    name: str
    description: str
    steps: tuple[StepSpec, ...]
    #: The JSON Schema (2020-12) of the job's input, published by ListJobTypes.
    input_schema: Mapping[str, Any]
    #: Phase text once the job has succeeded.
    done_phase: str = "Done"
    #: Its steps may save artifacts (``StepContext.save_artifact``): deleting one of its
    #: jobs deletes the job's objects too.
    saves_artifacts: bool = False
    #: Its steps read the job owner's whole history from job_api
    #: (``StepContext.export_history``): each attempt is dispatched with a step token
    #: (``jobkit.step_tokens``) that job_api's ExportService accepts.
    reads_history: bool = False
    #: What a JSON Schema cannot say about an input (one field against another, a real
    #: calendar date), checked once the schema is met; each violation names its field
    #: from ``input``.
    check_input: Callable[[Mapping[str, Any]], list[FieldViolation]] | None = None
    #: The version of this step graph, recorded on every job created with it. Raise it
    #: when a deploy changes the steps (names, order, phases, progress marks, retries),
    #: and keep the version it replaces in ``previous`` while its jobs may still run.
    version: int = 1
    #: Earlier versions of this type whose jobs may still be running: the orchestrator
    #: drives such a job by its own version's spec. A job whose version is in neither
    #: fails at its next decision (``JOB_TYPE_VERSION_GONE``). Highest version first.
    previous: tuple[JobTypeSpec, ...] = ()
    _validator: InputSchema = field(init=False, repr=False, compare=False)
    #: Each step's dependencies by position, resolved from ``StepSpec.after``.
    _after: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)
    #: Each step's share of the progress bar (``weight``), read at every decision.
    _weights: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Compiled once, when the catalogue loads: a malformed schema stops the process
        # at start-up, never a request.
        object.__setattr__(self, "_validator", compile_schema({**self.input_schema}))
        object.__setattr__(self, "_after", self._resolve_graph())
        ends = [s.progress_start for s in self.steps[1:]] + [100]
        weights = tuple(
            max(0, end - s.progress_start) for s, end in zip(self.steps, ends, strict=False)
        )
        object.__setattr__(self, "_weights", weights)
        if self.version < 1:
            raise ValueError(f"job type {self.name!r}: version must be at least 1")
        seen = {self.version}
        for old in self.previous:
            if old.name != self.name:
                raise ValueError(f"job type {self.name!r}: a previous version is {old.name!r}")
            if old.version >= self.version or old.version in seen:
                raise ValueError(
                    f"job type {self.name!r}: previous versions must be distinct and lower "
                    f"than {self.version} (got {old.version})"
                )
            if old.previous:
                raise ValueError(f"job type {self.name!r}: list every previous version once")
            seen.add(old.version)

    def _resolve_graph(self) -> tuple[tuple[int, ...], ...]:
        if not self.steps:
            raise ValueError(f"job type {self.name!r} has no steps")
        positions: dict[str, int] = {}
        graph: list[tuple[int, ...]] = []
        for index, step in enumerate(self.steps):
            if step.name in positions:
                raise ValueError(f"job type {self.name!r}: step {step.name!r} is listed twice")
            if step.after is None:
                graph.append((index - 1,) if index else ())
            else:
                unknown = [name for name in step.after if name not in positions]
                if unknown:
                    raise ValueError(
                        f"job type {self.name!r}: step {step.name!r} runs after "
                        f"{', '.join(unknown)}, which must be steps listed before it"
                    )
                graph.append(tuple(sorted({positions[name] for name in step.after})))
            positions[step.name] = index
        return tuple(graph)

    def after(self, index: int) -> tuple[int, ...]:
        """The positions of the steps step ``index`` waits for."""
        return self._after[index]

    def after_names(self, index: int) -> tuple[str, ...]:
        return tuple(self.steps[i].name for i in self._after[index])

    def downstream(self, index: int) -> frozenset[int]:
        """Step ``index`` and every step that waits for it, directly or not."""
        found = {index}
        for later in range(index + 1, len(self.steps)):
            if found.intersection(self._after[later]):
                found.add(later)
        return frozenset(found)

    def upstream(self, index: int) -> frozenset[int]:
        """Every step step ``index`` waits for, directly or not (not itself)."""
        found: set[int] = set()
        stack = list(self._after[index])
        while stack:
            step = stack.pop()
            if step not in found:
                found.add(step)
                stack.extend(self._after[step])
        return frozenset(found)

    def weight(self, index: int) -> int:
        """Step ``index``'s share of the progress bar: from its mark to the next one's."""
        return self._weights[index]

    def at_version(self, version: int) -> JobTypeSpec | None:
        """This type's spec of ``version``: this one or one of ``previous``; ``None`` if
        this deployment no longer has it."""
        if version == self.version:
            return self
        return next((old for old in self.previous if old.version == version), None)

    @property
    def every_step_name(self) -> tuple[str, ...]:
        """The steps of this version and of every previous one kept: what a worker must
        run while jobs of any of them may be running."""
        names = dict.fromkeys(self.step_names)
        for old in self.previous:
            names.update(dict.fromkeys(old.step_names))
        return tuple(names)

    @property
    def published_schema(self) -> dict[str, Any]:
        """The input schema as ListJobTypes publishes it: naming its draft."""
        return {"$schema": DRAFT_2020_12, **self.input_schema}

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    def step(self, name: str) -> StepSpec:
        for spec in self.steps:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def progress_at(self, step_index: int, percent_of_step: int) -> int:
        """Job progress of a straight line when step ``step_index`` is ``percent_of_step``
        % done (``progress_of`` for any graph)."""
        percent = max(0, min(100, percent_of_step))
        start = self.steps[step_index].progress_start
        return min(99, start + self.weight(step_index) * percent // 100)

    def progress_of(self, percents: Sequence[int]) -> int:
        """Job progress when each step is ``percents[i]`` % done (100: succeeded): the
        first mark, plus each step's share filled as far as the step is. For a straight
        line it is ``progress_at`` of the step running; for steps running in parallel, it
        sums them. At most 99: 100 is the job's success."""
        filled = sum(w * max(0, min(100, p)) for w, p in zip(self._weights, percents, strict=True))
        return min(99, self.steps[0].progress_start + filled // 100)

    def validate_input(self, doc: Mapping[str, Any]) -> list[FieldViolation]:
        """Every way ``doc`` breaks the input schema, each naming its field; then, if it
        meets the schema, what ``check_input`` finds."""
        violations = self._validator.validate(doc, "input")
        if violations or self.check_input is None:
            return violations
        return self.check_input(doc)


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

    def spec(self, name: str, version: int) -> JobTypeSpec | None:
        """The spec of job type ``name`` at ``version`` (a job's ``type_version``), current
        or kept in ``previous``; ``None`` if the type or that version is not here."""
        current = self._specs.get(name)
        return None if current is None else current.at_version(version)

    def version_gone(self, name: str, version: int) -> bool:
        """Whether ``version`` of type ``name`` was retired: older than the current one and
        no longer kept. A version newer than this process knows is not gone (a newer
        release made the job, and one of its processes will decide it)."""
        current = self._specs.get(name)
        return (
            current is not None and version < current.version and self.spec(name, version) is None
        )

    def saving_artifacts(self) -> list[str]:
        """The job types whose jobs may have artifacts in the object store."""
        return [spec.name for spec in self._specs.values() if spec.saves_artifacts]

    def reading_history(self) -> list[str]:
        """The job types whose steps are given a step token to read their owner's history."""
        return [spec.name for spec in self._specs.values() if spec.reads_history]
