"""One batch of orchestrator inputs, decided: pure functions, no grpc, asyncpg or nats.

Each input is decided against its job as the inputs before it in the batch left it
(``decide_batch``), so several reports on one job commit together and in order; then each
job's decisions fold into the one change that is written (``merge``). The wire format is
the consumer's: ``merge`` is handed the function that encodes a dispatch.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from jobkit import control, planning
from jobkit.catalog import Catalog, JobTypeSpec
from jobkit.errors import InvalidArgument
from jobkit.model import JobChange, JobRecord, NewJob, OutboxMessage
from jobkit.pricing import PriceTable
from jobkit.records import replace
from jobtypes import CATALOG
from services.orchestrator.state_machine import (
    DEFAULT_LEASE_S,
    DeadlinePassed,
    Decision,
    Dispatch,
    Ignored,
    Input,
    ReportKind,
    StepReport,
    Submitted,
    apply_report,
    start_job,
)

#: The outbox message that sends one attempt of a job's step to the workers.
EncodeDispatch = Callable[[JobRecord, Dispatch], OutboxMessage]

#: Reports that mean a worker is still busy with the attempt it reports on.
_ALIVE = frozenset({ReportKind.HEARTBEAT, ReportKind.PROGRESS})


def decide(
    job: JobRecord,
    item: Input,
    now: datetime,
    lease_s: float = DEFAULT_LEASE_S,
    catalog: Catalog = CATALOG,
) -> Decision | Ignored:
    """One input on one job, by the spec of the job's own type version (``catalog``: the
    deployed job types)."""
    spec = catalog.spec(job.type, job.type_version)
    if spec is None:
        if catalog.version_gone(job.type, job.type_version):
            # Nothing here can decide its next step: it fails now rather than hang.
            change = control.retire(job, now)
            return Decision(change) if change is not None else Ignored("job is finished")
        # A type or version newer than this release: a newer orchestrator decides it.
        return Ignored(f"unknown job type {job.type} version {job.type_version}")
    if isinstance(item, Submitted):
        return start_job(job, spec, now)
    if isinstance(item, DeadlinePassed):
        change = control.expire(job, now)
        return Decision(change) if change is not None else Ignored("deadline not passed")
    outcome = apply_report(job, spec, item, now, lease_s=lease_s)
    if item.children and isinstance(outcome, Decision):
        return _with_children(job, spec, item, outcome, now, lease_s, catalog)
    return outcome


def _with_children(
    job: JobRecord,
    spec: JobTypeSpec,
    report: StepReport,
    decision: Decision,
    now: datetime,
    lease_s: float,
    catalog: Catalog,
) -> Decision | Ignored:
    """The cursor's decision with the jobs the step asked for, planned as CreateJob plans
    a job, for the step's owner. The step checked them; one that fails here is a bug in
    the step, which no retry mends: the step fails."""
    created = []
    for child in report.children:
        request = planning.CreateRequest(child.job_type, child.input, child.document, None)
        try:
            valid = planning.validate(
                request, catalog, max_input_bytes=planning.DEFAULT_MAX_INPUT_BYTES
            )
        except InvalidArgument as exc:
            failure = replace(
                report,
                kind=ReportKind.FAILED,
                children=(),
                error_code="INVALID_CHILD_JOB",
                error_message=f"the step asked for a {child.job_type} job that is invalid: {exc}",
                retryable=False,
            )
            return apply_report(job, spec, failure, now, lease_s=lease_s)
        created.append(
            planning.plan(
                valid,
                owner=job.owner,
                job_id=uuid.uuid4(),
                now=now,
                trace_context=job.trace_context,
                parent_id=job.id,
            )
        )
    return replace(decision, created=tuple(created))


@dataclass(frozen=True, slots=True)
class Skipped:
    """An input that changes nothing, and why."""

    item: Input
    reason: str
    #: The job as the inputs before this one left it; ``None`` if there is no such job.
    job: JobRecord | None = None

    @property
    def attempt_to_stop(self) -> StepReport | None:
        """A worker still busy with an attempt that no longer counts (cancelled job, a job
        deleted, superseded attempt), to be told again to stop."""
        item = self.item
        if isinstance(item, StepReport) and item.kind in _ALIVE:
            return item
        return None


@dataclass(frozen=True, slots=True)
class Handed:
    """A step attempt that goes to the worker whose result started it, in the answer."""

    #: The job as the decision that started the step left it.
    job: JobRecord
    dispatch: Dispatch


@dataclass(frozen=True, slots=True)
class BatchDecisions:
    #: Each job's decisions, in the order of its inputs; jobs in the order first decided.
    decided: Mapping[uuid.UUID, tuple[Decision, ...]]
    skipped: tuple[Skipped, ...]
    #: By the index of the input (a result) whose answer carries it.
    handed: Mapping[int, Handed]
    #: Jobs the decisions create, in order.
    created: tuple[NewJob, ...] = ()


def decide_batch(
    jobs: Mapping[uuid.UUID, JobRecord],
    inputs: Sequence[Input],
    now: datetime,
    lease_s: float = DEFAULT_LEASE_S,
    catalog: Catalog = CATALOG,
) -> BatchDecisions:
    """Decide every input in order, each against its job as the decisions before it left it."""
    decided: dict[uuid.UUID, list[Decision]] = {}
    skipped: list[Skipped] = []
    handed: dict[int, Handed] = {}
    created: list[NewJob] = []
    for index, item in enumerate(inputs):
        before = jobs.get(item.job_id)
        if before is None:
            skipped.append(Skipped(item, "job not found"))
            continue
        current = decided[item.job_id][-1].change.job if item.job_id in decided else before
        outcome = decide(current, item, now, lease_s, catalog)
        if isinstance(outcome, Ignored):
            skipped.append(Skipped(item, outcome.reason, current))
            if outcome.rehand is not None:
                handed[index] = Handed(current, outcome.rehand)
            continue
        decided.setdefault(item.job_id, []).append(outcome)
        created.extend(outcome.created)
        for dispatch in outcome.dispatches:
            if dispatch.handed:
                handed[index] = Handed(outcome.change.job, dispatch)
    return BatchDecisions(
        decided={job_id: tuple(ds) for job_id, ds in decided.items()},
        skipped=tuple(skipped),
        handed=handed,
        created=tuple(created),
    )


def merge(
    decisions: Sequence[Decision],
    encode: EncodeDispatch,
    prices: PriceTable | None = None,
) -> JobChange:
    """One change out of several decisions on the same job within a batch; model usage is
    priced here, by this orchestrator's price table. Dispatches handed to a worker are not
    in the outbox: the answer to that worker's result carries them (``handed``)."""
    steps = {s.position: s for d in decisions for s in d.change.steps}
    outbox = tuple(encode(d.change.job, x) for d in decisions for x in d.dispatches if not x.handed)
    table = prices or PriceTable()
    return JobChange(
        job=decisions[-1].change.job,
        steps=tuple(steps.values()),
        events=tuple(e for d in decisions for e in d.change.events),
        outbox=outbox,
        notices=tuple(n for d in decisions for n in d.change.notices),
        usage=tuple(
            replace(u, cost_usd=table.cost(u.model, u.prompt_tokens, u.completion_tokens))
            for d in decisions
            for u in d.change.usage
        ),
        claimed=tuple(c for d in decisions for c in d.change.claimed),
    )
