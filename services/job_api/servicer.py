"""jobs.v1.JobService over grpc.aio: the adapter between protos and the job domain."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import grpc
from google.api import httpbody_pb2
from google.protobuf import empty_pb2, struct_pb2
from nats.aio.client import Client as NatsClient

from jobkit import control, limits, metrics, planning, store, tracing, webhooks
from jobkit.artifacts import (
    ArtifactCorrupted,
    ArtifactError,
    ArtifactMissing,
    ArtifactStore,
    ArtifactTooLarge,
    artifact_named,
    job_prefix,
    upload_prefix,
)
from jobkit.auth import Authenticator, Principal
from jobkit.convert import (
    delivery_to_proto,
    dict_to_struct,
    job_status_from_proto,
    job_to_proto,
    parse_job_id,
    scheduling_of,
    struct_from_bytes,
    struct_to_dict,
    upload_of,
)
from jobkit.db import Conn, wrap_db_errors
from jobkit.dispatch_gate import DispatchGate
from jobkit.errors import (
    AlreadyExists,
    DataLoss,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from jobkit.gen.jobs.v1 import job_service_pb2, job_service_pb2_grpc, jobs_pb2
from jobkit.lifecycle import JobStatus
from jobkit.limits import Limits
from jobkit.logging import get_logger, redacting
from jobkit.model import EventRecord, JobChange, JobRecord, NewJob, OutboxMessage
from jobkit.outbox import OutboxRelay
from jobkit.publish import publish_events, publish_notices
from jobkit.records import replace
from jobkit.redaction import sensitive_terms
from jobkit.rpc import authenticate, server_streaming, unary
from jobkit.step_tokens import StepTokens
from jobkit.watch_tokens import WatchTokens
from jobtypes import CATALOG
from services.job_api import repository
from services.job_api.admission import Admission, refuse_past_backlog
from services.job_api.group_commit import Created, GroupCommit, hand_over
from services.job_api.newcomers import NEWCOMER_UNFINISHED, PAST_NEWCOMER, Regulars
from services.job_api.pacing import Pacer
from services.job_api.page_tokens import PagePosition, PageTokens
from services.job_api.repository import BulkFilter, ListFilter

log = get_logger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
#: The most webhook deliveries ListWebhookDeliveries shows of a job: one per run (a
#: terminal event each), so only a job retried this many times could have more.
MAX_DELIVERIES = 1000
#: Children cancelled per transaction when their parent is: small enough that a slice
#: rarely meets an orchestrator's write, and a slice that does is cheap to take again.
_CANCEL_SLICE = 200
#: Bulk operations: jobs per call unless the request says (``limit``), the most a call
#: takes, and the most one transaction changes.
DEFAULT_BULK_LIMIT, MAX_BULK_LIMIT, _BULK_SLICE = 100, 1000, 50
#: What each bulk operation applies to: the statuses its filter may name.
_RETRYABLE = (JobStatus.FAILED, JobStatus.CANCELLED)
_CANCELLABLE = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.WAITING_INPUT)


#: The catalogue as ListJobTypes answers it: fixed for the life of the process.
_JOB_TYPES = job_service_pb2.ListJobTypesResponse(
    job_types=[
        jobs_pb2.JobType(
            name=t.name,
            description=t.description,
            steps=t.step_names,
            input_schema=dict_to_struct(t.published_schema),
            graph=[
                jobs_pb2.JobTypeStep(name=step.name, after=t.after_names(i), phase=step.phase)
                for i, step in enumerate(t.steps)
            ],
        )
        for t in CATALOG.values()
    ]
)


class JobServicer(job_service_pb2_grpc.JobServiceServicer):
    def __init__(
        self,
        pool: asyncpg.Pool,
        nc: NatsClient,
        relay: OutboxRelay,
        auth: Authenticator,
        page_tokens: PageTokens,
        *,
        max_input_bytes: int,
        dispatch_first_step: bool = True,
        limits: Limits | None = None,
        watch_tokens: WatchTokens | None = None,
        artifacts: ArtifactStore | None = None,
        max_upload_bytes: int = 64 * 1024 * 1024,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        step_tokens: StepTokens | None = None,
        admission: Admission | None = None,
        gate: DispatchGate | None = None,
        max_backlog: int = 0,
        webhook_allow_hosts: frozenset[str] = frozenset(),
        webhook_resolve_timeout_s: float = 5.0,
        resolve: webhooks.Resolve = webhooks.system_resolve,
        bulk_pacer: Pacer | None = None,
    ) -> None:
        #: Paces BulkRetryJobs and BulkCancelJobs on this replica (``BULK_JOBS_PER_SECOND``).
        self._bulk_pacer = bulk_pacer or Pacer(50.0)
        #: Webhook URLs: the hosts exempt from the address rules, and how their host names
        #: are resolved to be checked.
        self._webhook_allow_hosts = webhook_allow_hosts
        self._webhook_resolve_timeout_s = webhook_resolve_timeout_s
        self._resolve = resolve
        self._max_backlog = max_backlog
        #: Whether step attempts are held for the orchestrators' fair dispatcher.
        self._gate = gate
        #: Owners lately seen with a job unfinished: no newcomers, asked about less often.
        self._regulars = Regulars()
        #: Refuses CreateJob calls past the bound on those in progress.
        self._admission = admission or Admission(0)
        #: Mint a new job's first step token, for job types that read their owner's history.
        self._step_tokens = step_tokens
        self._max_upload_bytes = max_upload_bytes
        self._artifacts = artifacts
        #: Jobs of these types leave their artifacts to the sweeper when deleted (none
        #: without an object store: there would be nothing to delete).
        self._artifact_types = CATALOG.saving_artifacts() if artifacts is not None else []
        self._pool = pool
        self._nc = nc
        self._relay = relay
        self._auth = auth
        self._page_tokens = page_tokens
        self._max_input_bytes = max_input_bytes
        self._dispatch_first_step = dispatch_first_step
        self._limits = limits or Limits()
        self._watch_tokens = watch_tokens
        self._clock = clock
        #: Commits new jobs that need no check under a lock, several to a statement.
        self._creations = GroupCommit(pool, nc, relay, clock)

    def _caller(self, context: Context) -> Principal:
        return authenticate(self._auth, context)

    async def _shown(self, conn: Conn, job_id: uuid.UUID, caller: Principal) -> JobRecord:
        """The job as the caller may see it, with its model usage."""
        job = self._visible(await store.fetch_job(conn, job_id), caller)
        (shown,) = await store.with_usage(conn, [job])
        return shown

    @staticmethod
    def _visible(job: JobRecord | None, caller: Principal) -> JobRecord:
        # Another user's job answers exactly like a missing one.
        if job is None or not caller.may_see(job.owner):
            raise NotFound()
        return job

    @unary
    async def CreateJob(
        self, request: job_service_pb2.CreateJobRequest, context: Context
    ) -> jobs_pb2.Job:
        caller = self._caller(context)
        document = _document(request.input)
        # Whatever this request logs, the names and contacts in its input are redacted.
        with self._admission.admit(), redacting(sensitive_terms(document)):
            return await self._create(caller, request, document)

    async def _create(
        self,
        caller: Principal,
        request: job_service_pb2.CreateJobRequest,
        document: dict[str, Any],
    ) -> jobs_pb2.Job:
        valid = planning.validate(
            planning.CreateRequest(
                job_type=request.type,
                input=request.input.SerializeToString(deterministic=True),
                document=document,
                idempotency_key=request.idempotency_key or None,
                scheduling=scheduling_of(request),
                webhook_url=request.webhook_url or None,
            ),
            CATALOG,
            max_input_bytes=self._max_input_bytes,
            webhook_allow_hosts=self._webhook_allow_hosts,
        )
        return await self._plan_and_commit(caller, valid)

    async def _plan_and_commit(
        self,
        caller: Principal,
        valid: planning.ValidRequest,
        reuse: planning.Reuse | None = None,
    ) -> jobs_pb2.Job:
        """Plan a validated request (CreateJob's, ForkJob's with the steps it reuses)
        as the caller's new job, and commit it."""
        if valid.webhook is not None:
            await self._check_webhook(valid.webhook)
        now = self._clock()
        planned = planning.plan(
            valid,
            owner=caller.subject,
            job_id=uuid.uuid4(),
            now=now,
            # This call's span (the caller's trace, or a new one): the job's trace from now on.
            trace_context=tracing.current_traceparent(),
            dispatch_first_step=self._dispatch_first_step,
            step_tokens=self._step_tokens,
            reuse=reuse,
        )
        return await self._commit_new(caller, planned, valid, now)

    async def _commit_new(
        self, caller: Principal, planned: NewJob, valid: planning.ValidRequest, now: datetime
    ) -> jobs_pb2.Job:
        """Commit a planned job (CreateJob's, ForkJob's) under the caller's limits, then
        announce it; a repeat of an idempotent request answers with the job it made."""
        job, key = planned.job, valid.idempotency_key
        digests = (valid.request_hash, valid.earlier_hash)
        async with wrap_db_errors(), self._pool.acquire() as conn:
            # A repeated request is answered before any limit: it creates nothing.
            if key is not None and (replay := await self._replay(conn, caller, key, digests)):
                return replay
            if self._gate is not None:
                refuse_past_backlog(self._gate.word, self._max_backlog)
            await limits.count_creation(conn, caller.subject, self._limits.creations_per_minute)
            await limits.check_token_budget(conn, caller.subject, self._limits.tokens_per_day)
            # One statement commits the job; the running-jobs quota, and the newcomer's
            # check while the dispatcher holds, need a transaction around their check and
            # that statement (under the user's lock: a burst of one user's CreateJobs
            # makes one or two newcomer's jobs, not many). The check looks first without
            # the lock: a user with more unfinished than a newcomer (a flood's every
            # CreateJob but its first two) is none until those jobs end, and commits in
            # one statement, as when nothing holds.
            holding = self._holding
            express_open = self._express_open
            if holding and not express_open:
                metrics.EXPRESS_DECISIONS.labels("lane_full").inc()
            newcomer_check = (
                holding
                and express_open
                and not (
                    self._limits.running_jobs <= 0
                    and await self._past_newcomer(conn, caller.subject)
                )
            )
            checked = self._limits.running_jobs > 0 or newcomer_check
            if checked or key is not None:
                try:
                    with tracing.child_span("commit job"):  # recorded only
                        async with conn.transaction() if checked else contextlib.nullcontext():
                            running = await limits.check_running(
                                conn,
                                caller.subject,
                                self._limits.running_jobs,
                                count_to=PAST_NEWCOMER if newcomer_check else 0,
                            )
                            if (
                                newcomer_check
                                and running is not None
                                and running <= NEWCOMER_UNFINISHED
                            ):
                                planned = await self._expressed(conn, caller, planned, running)
                            events, outbox_rows = await store.create_jobs(
                                conn, [planned], now, hold_steps=holding
                            )
                except asyncpg.UniqueViolationError:
                    # A concurrent request with the same key won the race.
                    assert key is not None
                    replay = await self._replay(conn, caller, key, digests)
                    assert replay is not None
                    return replay
                committed: Created | None = Created(events, now)
            else:
                committed = None
        # Recorded only: CREATED carries the job's trace to the notifier.
        traced = tracing.recording()
        if committed is None:
            # Nothing to check under a lock, no key to collide: with others (group_commit).
            with tracing.child_span("commit job"):  # recorded only
                committed = await self._creations.create(planned, hold_steps=holding, traced=traced)
        else:
            traces = {job.id: job.trace_context} if traced else {}
            await hand_over(self._nc, self._relay, [planned], now, events, outbox_rows, traces)
        events, now = committed.events, committed.now
        log.info(
            "job_created",
            job_id=str(job.id),
            job_type=job.type,
            **({"forked_from": str(job.forked_from_id)} if job.forked_from_id else {}),
        )
        metrics.JOBS_CREATED.labels(job.type).inc()
        if self._gate is not None:
            await self._gate.committed([planned.job], frees_slots=False)
        return job_to_proto(replace(job, last_sequence=len(events), updated_at=now))

    async def _check_webhook(self, target: webhooks.Target) -> None:
        """Resolve a webhook URL's host and refuse it if any address it has is one
        webhooks may not reach; the notifier checks again before every try."""
        try:
            await webhooks.addresses(target, self._resolve, self._webhook_resolve_timeout_s)
        except webhooks.Refused as refused:
            raise InvalidArgument.on(
                webhooks.FIELD,
                f"resolves to a {refused.reason} address, which webhooks may not reach",
            ) from None
        except webhooks.Unresolvable as unresolvable:
            if unresolvable.permanent:
                raise InvalidArgument.on(
                    webhooks.FIELD, "names a host that does not resolve"
                ) from None
            raise Unavailable("could not resolve webhook_url's host; retry shortly") from None

    async def _replay(
        self, conn: Conn, caller: Principal, key: str, digests: tuple[bytes, bytes]
    ) -> jobs_pb2.Job | None:
        """The job an earlier request with this idempotency key created, if any: if it
        recorded the same request (``digests``: this one's hash, and its hash as a job
        made before the whole request counted recorded it)."""
        existing = await repository.find_by_idempotency_key(conn, caller.subject, key)
        if existing is None:
            return None
        if existing[1] not in digests:
            raise AlreadyExists("idempotency_key was already used for a different request")
        return job_to_proto(await self._shown(conn, existing[0], caller))

    @unary
    async def GetJob(
        self, request: job_service_pb2.GetJobRequest, context: Context
    ) -> jobs_pb2.Job:
        caller = self._caller(context)
        job_id = parse_job_id(request.job_id)
        async with wrap_db_errors(), self._pool.acquire() as conn:
            shown = await self._shown(conn, job_id, caller)
        return job_to_proto(shown)

    @unary
    async def ForkJob(
        self, request: job_service_pb2.ForkJobRequest, context: Context
    ) -> jobs_pb2.Job:
        """A new job of the caller's from one of theirs: its input with the overrides over
        it, its checkpoints before ``from_step`` reused, the rest run (``planning``)."""
        caller = self._caller(context)
        source_id = parse_job_id(request.job_id)
        overrides = _document(request.input_overrides, "input_overrides")
        async with wrap_db_errors(), self._pool.acquire() as conn:
            source = self._visible(await store.fetch_job(conn, source_id), caller)
        reuse = planning.reuse_for_fork(source, CATALOG, request.from_step)
        document = planning.fork_input(struct_to_dict(struct_from_bytes(source.input)), overrides)
        with self._admission.admit(), redacting(sensitive_terms(document)):
            try:
                valid = planning.validate(
                    planning.CreateRequest(
                        job_type=source.type,
                        input=dict_to_struct(document).SerializeToString(deterministic=True),
                        document=document,
                        idempotency_key=request.idempotency_key or None,
                        scheduling=planning.fork_scheduling(source),
                        webhook_url=source.webhook_url,
                        type_version=source.type_version,
                    ),
                    CATALOG,
                    max_input_bytes=self._max_input_bytes,
                    webhook_allow_hosts=self._webhook_allow_hosts,
                )
            except InvalidArgument as invalid:
                raise planning.as_overrides(invalid, overrides) from None
            valid = planning.fork_request_hash(valid, source.id, request.from_step)
            return await self._plan_and_commit(caller, valid, reuse)

    @server_streaming
    async def DownloadArtifact(
        self, request: job_service_pb2.DownloadArtifactRequest, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        caller = self._caller(context)
        job_id = parse_job_id(request.job_id)
        if not request.name:
            raise InvalidArgument.on("name", "must name one of the job's artifacts")
        async with wrap_db_errors(), self._pool.acquire() as conn:
            job = self._visible(await store.fetch_job(conn, job_id), caller)
        result = struct_to_dict(struct_from_bytes(job.result)) if job.result else None
        artifact = artifact_named(result, request.name)
        if artifact is None or self._artifacts is None:
            raise NotFound("artifact not found")
        header = jobs_pb2.Artifact(
            name=artifact.name,
            content_type=artifact.content_type,
            size=artifact.size,
            sha256=artifact.sha256,
        )
        first = httpbody_pb2.HttpBody(content_type=artifact.content_type)
        first.extensions.add().Pack(header)
        pieces = self._artifacts.read(job_prefix(job.owner, job.id), artifact.sha256)
        try:
            async for piece in pieces:
                if first is not None:
                    first.data = piece
                    yield first
                    first = None
                else:
                    yield httpbody_pb2.HttpBody(data=piece)
        except ArtifactMissing:
            raise NotFound("artifact not found") from None
        except ArtifactCorrupted:
            log.error("artifact_corrupted", job_id=str(job.id))
            raise DataLoss() from None
        except ArtifactError:
            raise Unavailable() from None
        if first is not None:  # empty: the header alone
            yield first

    @unary
    async def CreateUpload(
        self,
        request_iterator: AsyncIterator[job_service_pb2.CreateUploadRequest],
        context: Context,
    ) -> job_service_pb2.Upload:
        caller = self._caller(context)
        if self._artifacts is None:
            raise FailedPrecondition("this deployment has no object store for uploads")
        upload_id = uuid.uuid4()
        content_type, pieces = await upload_of(request_iterator)
        try:
            stored = await self._artifacts.write(
                upload_prefix(caller.subject, upload_id),
                "upload",
                content_type,
                pieces,
                max_bytes=self._max_upload_bytes,
            )
        except ArtifactTooLarge:
            raise InvalidArgument.on(
                "data", f"the file must be at most {self._max_upload_bytes} bytes"
            ) from None
        except ArtifactError:
            raise Unavailable() from None
        async with wrap_db_errors(), self._pool.acquire() as conn:
            created_at = await repository.insert_upload(conn, upload_id, caller.subject, stored)
        log.info("upload_stored", upload_id=str(upload_id), size=stored.size)
        upload = job_service_pb2.Upload(
            upload_id=str(upload_id),
            size=stored.size,
            sha256=stored.sha256,
            content_type=stored.content_type,
        )
        upload.created_at.FromDatetime(created_at)
        return upload

    @unary
    async def ListJobs(
        self, request: job_service_pb2.ListJobsRequest, context: Context
    ) -> job_service_pb2.ListJobsResponse:
        caller = self._caller(context)
        if request.page_size < 0:
            raise InvalidArgument.on("page_size", "must not be negative")
        limit = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        try:
            status = job_status_from_proto(request.status)
        except ValueError:
            raise InvalidArgument.on("status", "is not a known JobStatus") from None
        if request.type and CATALOG.get(request.type) is None:
            raise InvalidArgument.on("type", "is not a known job type")
        parent_id = (
            parse_job_id(request.parent_job_id, field="parent_job_id")
            if request.parent_job_id
            else None
        )
        where = ListFilter(
            owner=caller.subject,
            status=status,
            job_type=request.type or None,
            parent_id=parent_id,
        )
        after = (
            self._page_tokens.decode(request.page_token, where.fingerprint())
            if request.page_token
            else None
        )
        async with wrap_db_errors(), self._pool.acquire() as conn:
            jobs = await repository.list_jobs(conn, where, after, limit + 1)
            jobs = await store.with_usage(conn, jobs)
        response = job_service_pb2.ListJobsResponse(jobs=[job_to_proto(j) for j in jobs[:limit]])
        if len(jobs) > limit:
            last = jobs[limit - 1]
            response.next_page_token = self._page_tokens.encode(
                PagePosition(last.created_at, last.id), where.fingerprint()
            )
        return response

    async def _transition(
        self,
        caller: Principal,
        raw_id: str,
        decide: Callable[[JobRecord, datetime], JobChange | None],
    ) -> JobRecord:
        job_id = parse_job_id(raw_id)
        async with wrap_db_errors(), self._pool.acquire() as conn:
            async with conn.transaction():
                job = self._visible(await store.fetch_job(conn, job_id, lock=True), caller)
                # After the lock: the job's events are stamped in their order.
                now = self._clock()
                tracing.bind_job_trace(job.trace_context)
                change = decide(job, now)
                events, outbox_rows = (
                    await store.apply_changes(conn, [(job, change)], now, hold_steps=self._holding)
                    if change
                    else ([], [])
                )
            stored = await self._shown(conn, job_id, caller)
        if change is not None:
            await self._announce([(job, change)], events, outbox_rows)
        return stored

    @unary
    async def CancelJob(
        self, request: job_service_pb2.CancelJobRequest, context: Context
    ) -> jobs_pb2.Job:
        caller = self._caller(context)
        job_id = parse_job_id(request.job_id)
        try:
            job = await self._transition(caller, request.job_id, control.cancel)
        except FailedPrecondition:
            # A finished bulk_import still stops the jobs it created; a finished job that
            # created none cannot be cancelled.
            async with wrap_db_errors(), self._pool.acquire() as conn:
                job = await self._shown(conn, job_id, caller)
                if not await repository.unfinished_children(conn, job_id, None, 1):
                    raise
        children = await self._cancel_children(job_id)
        log.info("job_cancelled", job_id=str(job_id), children=children)
        return job_to_proto(job)

    async def _cancel_children(self, parent_id: uuid.UUID) -> int:
        """Cancel every queued or running job ``parent_id``'s step created, a slice at a
        time, each slice its own transaction; returns how many. The parent is cancelled
        (or finished) first, so its step creates no more meanwhile (fencing). If this stops
        half-way, CancelJob again goes on with the rest."""
        cancelled = 0
        after: PagePosition | None = None
        while True:
            async with wrap_db_errors(), self._pool.acquire() as conn:
                found = await repository.unfinished_children(conn, parent_id, after, _CANCEL_SLICE)
                if not found:
                    return cancelled
                try:
                    async with conn.transaction():
                        jobs = await store.fetch_jobs(conn, [p.job_id for p in found], lock=True)
                        now = self._clock()
                        changes = [
                            (child, change)
                            for child in jobs.values()
                            if not child.status.terminal and (change := control.cancel(child, now))
                        ]
                        events, outbox_rows = (
                            await store.apply_changes(conn, changes, now, hold_steps=self._holding)
                            if changes
                            else ([], [])
                        )
                except asyncpg.TransactionRollbackError:
                    # A deadlock with an orchestrator writing some of these children (it
                    # locks in another order): the slice rolled back whole; take it again.
                    log.info("cancel_slice_retried", job_id=str(parent_id))
                    continue
            after = found[-1]
            await self._announce(changes, events, outbox_rows)
            cancelled += len(changes)

    async def _announce(
        self,
        changes: Sequence[tuple[JobRecord, JobChange]],
        events: Sequence[EventRecord],
        outbox_rows: Sequence[tuple[int, OutboxMessage]],
    ) -> None:
        """After a commit of ``changes``: count them, publish their events, tell workers
        to stop what they stopped, and hand the outbox rows to the relay."""
        metrics.observe_changes(changes)
        await publish_events(self._nc, events)
        await publish_notices(self._nc, [n for _, c in changes for n in c.notices])
        self._relay.submit(outbox_rows)
        if self._gate is not None:
            await self._gate.committed(c.job for _, c in changes)

    async def _expressed(
        self, conn: Conn, caller: Principal, planned: NewJob, running: int
    ) -> NewJob:
        """A newcomer's job (``running`` unfinished, at most a newcomer's), its first step
        by the express lane: nothing of theirs waits, so there is no turn of the fair
        dispatcher to wait for (it would be theirs). Unless their one job waits its turn,
        sent there while the lane was full: then this one goes behind it, not ahead."""
        if running and await repository.steps_waiting_their_turn(conn, caller.subject):
            metrics.EXPRESS_DECISIONS.labels("behind_own").inc()
            return planned
        expressed = planning.expressed(planned)
        if expressed is not planned:
            metrics.EXPRESS_DECISIONS.labels("express").inc()
        return expressed

    async def _past_newcomer(self, conn: Conn, owner: str) -> bool:
        """Whether ``owner`` has more jobs queued or running than a newcomer has (a yes seen
        lately is trusted: ``newcomers``)."""
        if self._regulars.known(owner):
            return True
        if found := await limits.unfinished_at_least(conn, owner, PAST_NEWCOMER):
            self._regulars.seen(owner)
        return found

    @property
    def _holding(self) -> bool:
        """Whether step attempts written now wait for the fair dispatcher."""
        return self._gate is not None and self._gate.held

    @property
    def _express_open(self) -> bool:
        """Whether a newcomer's first step may take the express lane: no other waits in
        it for a slot (``Word.express_open``)."""
        return self._gate is not None and self._gate.word.express_open

    @unary
    async def RetryJob(
        self, request: job_service_pb2.RetryJobRequest, context: Context
    ) -> jobs_pb2.Job:
        job = await self._transition(self._caller(context), request.job_id, _retry)
        log.info("job_retried", job_id=str(job.id))
        return job_to_proto(job)

    @unary
    async def SubmitInput(
        self, request: job_service_pb2.SubmitInputRequest, context: Context
    ) -> jobs_pb2.Job:
        caller = self._caller(context)
        document = _document(request.input)
        if not request.step:
            raise InvalidArgument.on("step", "is required: the step waiting for input")

        def decide(job: JobRecord, now: datetime) -> JobChange:
            if job.owner != caller.subject:
                raise PermissionDenied("only the job's owner may answer its steps")
            spec = CATALOG.spec(job.type, job.type_version)
            if spec is None:
                raise FailedPrecondition(control.version_gone_message(job.type, job.type_version))
            return control.answer(job, spec, request.step, document, now)

        job = await self._transition(caller, request.job_id, decide)
        log.info("input_submitted", job_id=str(job.id), step=request.step)
        return job_to_proto(job)

    @unary
    async def BulkRetryJobs(
        self, request: job_service_pb2.BulkRetryJobsRequest, context: Context
    ) -> job_service_pb2.BulkRetryJobsResponse:
        changed, skipped, token = await self._bulk(
            self._caller(context), "retry", request.filter, request.limit, request.page_token
        )
        return job_service_pb2.BulkRetryJobsResponse(
            changed=changed, skipped=skipped, next_page_token=token
        )

    @unary
    async def BulkCancelJobs(
        self, request: job_service_pb2.BulkCancelJobsRequest, context: Context
    ) -> job_service_pb2.BulkCancelJobsResponse:
        changed, skipped, token = await self._bulk(
            self._caller(context), "cancel", request.filter, request.limit, request.page_token
        )
        return job_service_pb2.BulkCancelJobsResponse(
            changed=changed, skipped=skipped, next_page_token=token
        )

    async def _bulk(
        self,
        caller: Principal,
        operation: str,
        raw_filter: job_service_pb2.JobFilter,
        raw_limit: int,
        page_token: str,
    ) -> tuple[int, int, str]:
        """Retry or cancel up to ``raw_limit`` jobs matching the filter, oldest first from
        the page token's position, a slice per transaction, paced; returns how many changed,
        how many were skipped (changed since they matched), and the token to go on with
        (empty: none left). Stopped half-way, the token of the last call still holds: the
        slices before it are committed, and the keyset never takes a job twice."""
        if not caller.is_admin:
            raise PermissionDenied("bulk operations need the jobs:admin scope")
        if not 0 <= raw_limit <= MAX_BULK_LIMIT:
            raise InvalidArgument.on("limit", f"must be between 0 and {MAX_BULK_LIMIT} (0: 100)")
        limit = raw_limit or DEFAULT_BULK_LIMIT
        applies_to = _RETRYABLE if operation == "retry" else _CANCELLABLE
        decide = _retry if operation == "retry" else control.cancel
        where = _bulk_filter(raw_filter, applies_to)
        fingerprint = where.fingerprint(operation)
        after = self._page_tokens.decode(page_token, fingerprint) if page_token else None
        changed = skipped = 0
        left, more = limit, True
        while left > 0:
            asked = min(_BULK_SLICE, left)
            async with wrap_db_errors(), self._pool.acquire() as conn:
                found = await repository.bulk_slice(conn, where, after, asked)
            if not found:
                more = False
                break
            # Paced before the slice's transaction, holding no connection while it waits.
            await self._bulk_pacer.take(len(found))
            async with wrap_db_errors(), self._pool.acquire() as conn:
                try:
                    async with conn.transaction():
                        jobs = await store.fetch_jobs(conn, [p.job_id for p in found], lock=True)
                        now = self._clock()
                        changes = [
                            (job, change)
                            for job in jobs.values()
                            if job.status in where.statuses
                            and (change := _quietly(decide, job, now)) is not None
                        ]
                        events, outbox_rows = (
                            await store.apply_changes(conn, changes, now, hold_steps=self._holding)
                            if changes
                            else ([], [])
                        )
                except asyncpg.TransactionRollbackError:
                    # A deadlock with an orchestrator's write: the slice rolled back whole;
                    # take it again.
                    log.info("bulk_slice_retried", operation=operation)
                    continue
            await self._announce(changes, events, outbox_rows)
            changed += len(changes)
            skipped += len(found) - len(changes)
            left -= len(found)
            after = found[-1]
            if len(found) < asked:
                more = False
                break
        token = self._page_tokens.encode(after, fingerprint) if more and after else ""
        log.info("bulk_" + operation, changed=changed, skipped=skipped, more=bool(token))
        return changed, skipped, token

    @unary
    async def DeleteJob(
        self, request: job_service_pb2.DeleteJobRequest, context: Context
    ) -> empty_pb2.Empty:
        caller = self._caller(context)
        job_id = parse_job_id(request.job_id)
        async with wrap_db_errors(), self._pool.acquire() as conn, conn.transaction():
            job = self._visible(await store.fetch_job(conn, job_id, lock=True), caller)
            # A running step is told to stop; its late result finds no job and is dropped.
            change = None if job.status.terminal else control.cancel(job, self._clock())
            await store.erase_jobs(conn, [job_id], self._artifact_types)
        if change is not None:
            await publish_notices(self._nc, change.notices)
        log.info("job_deleted", job_id=str(job_id))
        return empty_pb2.Empty()

    @unary
    async def ListJobTypes(
        self, request: job_service_pb2.ListJobTypesRequest, context: Context
    ) -> job_service_pb2.ListJobTypesResponse:
        self._caller(context)
        return _JOB_TYPES

    @unary
    async def ListWebhookDeliveries(
        self, request: job_service_pb2.ListWebhookDeliveriesRequest, context: Context
    ) -> job_service_pb2.ListWebhookDeliveriesResponse:
        caller = self._caller(context)
        job_id = parse_job_id(request.job_id)
        async with wrap_db_errors(), self._pool.acquire() as conn:
            self._visible(await store.fetch_job(conn, job_id), caller)
            deliveries = await repository.webhook_deliveries(conn, job_id, MAX_DELIVERIES)
        return job_service_pb2.ListWebhookDeliveriesResponse(
            deliveries=[delivery_to_proto(d) for d in deliveries]
        )

    @unary
    async def CreateWatchToken(
        self, request: job_service_pb2.CreateWatchTokenRequest, context: Context
    ) -> job_service_pb2.CreateWatchTokenResponse:
        caller = self._caller(context)
        job_id = parse_job_id(request.job_id)
        if self._watch_tokens is None:
            raise FailedPrecondition("watch tokens are not configured (WATCH_TOKEN_SECRET)")
        async with wrap_db_errors(), self._pool.acquire() as conn:
            job = self._visible(await store.fetch_job(conn, job_id), caller)
        # Bound to the job's owner: an admin's token watches as the owner would.
        token, expires_at = self._watch_tokens.issue(job.owner, str(job_id), self._clock())
        response = job_service_pb2.CreateWatchTokenResponse(token=token)
        response.expires_at.FromDatetime(expires_at)
        return response


def _document(value: struct_pb2.Struct, field: str = "input") -> dict[str, Any]:
    """A request's Struct as a JSON document; INVALID_ARGUMENT for a number JSON cannot
    hold."""
    try:
        return struct_to_dict(value)
    except ValueError:
        raise InvalidArgument.on(field, "numbers must be finite, not NaN or Infinity") from None


def _retry(job: JobRecord, now: datetime) -> JobChange:
    """RetryJob's transition, by the deployed catalogue (refused if the job's type version
    is gone)."""
    return control.retry(job, now, CATALOG)


def _quietly(
    decide: Callable[[JobRecord, datetime], JobChange | None], job: JobRecord, now: datetime
) -> JobChange | None:
    """A bulk operation's decision on one job; ``None`` (skipped) where the single-job RPC
    would refuse it (finished since it matched, deadline passed, type version gone)."""
    try:
        return decide(job, now)
    except FailedPrecondition:
        return None


def _bulk_filter(raw: job_service_pb2.JobFilter, applies_to: tuple[JobStatus, ...]) -> BulkFilter:
    """A bulk request's filter, checked: a known type, a status the operation applies to,
    a sensible creation range."""
    if raw.type and CATALOG.get(raw.type) is None:
        raise InvalidArgument.on("filter.type", "is not a known job type")
    try:
        status = job_status_from_proto(raw.status)
    except ValueError:
        raise InvalidArgument.on("filter.status", "is not a known JobStatus") from None
    if status is not None and status not in applies_to:
        names = " or ".join(s.value for s in applies_to)
        raise InvalidArgument.on("filter.status", f"must be {names} (or unset: both)")
    after = raw.created_after.ToDatetime(tzinfo=UTC) if raw.HasField("created_after") else None
    before = raw.created_before.ToDatetime(tzinfo=UTC) if raw.HasField("created_before") else None
    if after is not None and before is not None and after >= before:
        raise InvalidArgument.on("filter.created_before", "must be after created_after")
    return BulkFilter(
        statuses=(status,) if status is not None else applies_to,
        job_type=raw.type or None,
        owner=raw.owner or None,
        created_after=after,
        created_before=before,
    )
