"""NATS JetStream: connection, streams, consumers and subjects.

Streams (file storage, work-queue retention: a message lives until one consumer acks it):

- ``JOB_STEPS`` (``jobs.steps.<type>.<step>``): step attempts for ai_worker replicas,
  pulled by the durable consumer ``ai_worker``.
- ``JOB_EXPRESS`` (``jobs.express.<type>.<step>``): the first step of a job whose owner
  has nothing else unfinished, while the workers are saturated and the rest waits for the
  fair dispatcher: pulled by ``ai_worker_express`` into slots kept for it
  (``EXPRESS_SLOTS``), so a newcomer starts at once instead of behind a flood.
- ``JOB_UPDATES`` (``jobs.updates.submitted``, ``jobs.updates.report``): what the
  orchestrator consumes — resumed jobs, and workers' heartbeats and progress that no
  orchestrator took as a request (none listening, or one that could not commit them) —
  through the durable, queue-grouped consumer ``orchestrator``.
- ``JOB_WEBHOOKS`` (``jobs.webhooks.<job_id>``): webhook deliveries, enqueued through the
  outbox with their events, pulled by the notifiers' durable consumer ``notifier_webhooks``;
  a failed try is handed back with the delay before the next one (``nak(delay)``).

Core NATS (no stream) carries what Postgres already holds durably and a subscriber can
recover by other means: ``jobs.events.<job_id>`` (committed events, for the notifier, which
replays gaps from Postgres), ``jobs.cancel`` (stop-this-step notices to workers) and
``jobs.offers`` (a new job's first step, offered to a free worker before JetStream: its
outbox row stands until the sweeper finds that worker has reported on it) and
``jobs.snapshots`` (a new job as written, so an orchestrator need not read it back).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import NoRespondersError, NoServersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import (
    APIError,
    BadRequestError,
    NoStreamResponseError,
    NotFoundError,
    ServiceUnavailableError,
)

from jobkit.logging import get_logger

log = get_logger(__name__)

STEPS_STREAM = "JOB_STEPS"
STEPS_SUBJECT_PREFIX = "jobs.steps."
EXPRESS_STREAM = "JOB_EXPRESS"
EXPRESS_SUBJECT_PREFIX = "jobs.express."
UPDATES_STREAM = "JOB_UPDATES"
SUBMITTED_SUBJECT = "jobs.updates.submitted"
REPORT_SUBJECT = "jobs.updates.report"
#: A step attempt's result, as a core NATS request (outside every stream): an orchestrator
#: of the queue group answers once the result is committed, and only then does the worker
#: ack its dispatch. A fsynced JetStream write per step saved; nothing is lost, because an
#: unanswered result is sent again, and a dispatch never acked is delivered again.
RESULT_SUBJECT = "jobs.results"
RESULT_QUEUE = "orchestrators"
#: The answers: settled (committed now, or already: a repeat, a stale attempt), or not
#: committed (a failed batch, a stopping orchestrator): send it again.
RESULT_SETTLED = b"settled"
RESULT_AGAIN = b"again"
CANCEL_SUBJECT = "jobs.cancel"
#: A step attempt offered to a worker with a slot free, as a core NATS request, before it
#: goes through JetStream (``jobkit.offers``): one worker of the queue group answers
#: ``OFFER_TAKEN`` and runs it, or ``OFFER_REFUSED``. Refused,
#: unanswered, or with no worker listening, the attempt is published to JetStream as ever.
OFFER_SUBJECT = "jobs.offers"
OFFER_QUEUE = "workers"
OFFER_TAKEN = b"taken"
OFFER_REFUSED = b"refused"
#: When the offerer stops waiting for an answer (Unix time, ms): a worker that reads the
#: offer later refuses it, since by then the attempt has gone through JetStream.
OFFER_DEADLINE_HEADER = "Jobs-Offer-Deadline"
#: When a worker stops waiting for the answer to its result (Unix time, ms): an answer it
#: reads later is lost. A step handed over with a lost answer waits for its lease; so an
#: orchestrator hands another job's waiting step only to a worker that will still be
#: waiting well after it answers.
ANSWER_BY_HEADER = "Jobs-Answer-By"
#: A new job as job_api wrote it (core NATS, ``jobkit.snapshots``), for every
#: orchestrator's memory: the first result on it is decided without reading it back.
SNAPSHOT_SUBJECT = "jobs.snapshots"
#: The fair dispatcher's word (core NATS, ``jobkit.dispatch_gate``): whether step attempts
#: are held in Postgres's ready queue (``held``) or published straight away (``open``),
#: and the wake-up that tells it ready rows were committed.
DISPATCH_MODE_SUBJECT = "jobs.dispatch.mode"
DISPATCH_WAKE_SUBJECT = "jobs.dispatch.wake"
EVENTS_PREFIX = "jobs.events."
WEBHOOKS_STREAM = "JOB_WEBHOOKS"
WEBHOOKS_SUBJECT_PREFIX = "jobs.webhooks."
WEBHOOK_CONSUMER = "notifier_webhooks"
WORKER_CONSUMER = "ai_worker"
WORKER_EXPRESS_CONSUMER = "ai_worker_express"
ORCHESTRATOR_CONSUMER = "orchestrator"
ORCHESTRATOR_DELIVER_SUBJECT = "jobs.deliver.orchestrator"

#: How long JetStream remembers a Nats-Msg-Id: an outbox re-publish within it is dropped.
DUPLICATE_WINDOW_S = 600.0

#: JetStream API errors a cluster answers while it elects a leader or misses a peer, and
#: which pass by themselves: "JetStream system temporarily unavailable" (10008), "cluster
#: can not handle request" (10009, no meta leader yet), "no suitable peers for placement"
#: (10005, an R3 asset while a node is down), "stream is offline" (10118, 10194) and
#: "consumer is offline" (10119, 10195).
TRANSIENT_API_CODES = frozenset({10005, 10008, 10009, 10118, 10119, 10194, 10195})

#: How long a JetStream API call is retried through an election before the error stands.
API_RETRY_S = 60.0

_T = TypeVar("_T")


def step_subject(job_type: str, step: str) -> str:
    return f"{STEPS_SUBJECT_PREFIX}{job_type}.{step}"


#: A result's header naming its lane: ``EXPRESS_LANE`` for the steps of a job that came by
#: the express lane, which an orchestrator decides apart from the flood's batches.
LANE_HEADER = "Jobs-Lane"
EXPRESS_LANE = "express"


def express_subject(subject: str) -> str:
    """A step attempt's subject (``step_subject``) in the express lane."""
    assert subject.startswith(STEPS_SUBJECT_PREFIX), subject
    return EXPRESS_SUBJECT_PREFIX + subject.removeprefix(STEPS_SUBJECT_PREFIX)


def direct_result_subject(replica: str) -> str:
    """One orchestrator's own result subject: a job's next results go to the orchestrator
    that handed its step over, which holds the job in memory (``ResultAnswer``)."""
    return f"{RESULT_SUBJECT}.{replica}"


def is_result(subject: str) -> bool:
    """A result request, on the shared subject or on one orchestrator's own."""
    return subject == RESULT_SUBJECT or subject.startswith(f"{RESULT_SUBJECT}.")


def step_msg_id(job_id: str, step: str, attempt: int) -> str:
    """A step attempt's ``Nats-Msg-Id``: JetStream keeps at most one dispatch of it within
    its duplicate window, whoever publishes it (an outbox relay, a stopping worker)."""
    return f"{job_id}:{step}:{attempt}"


def events_subject(job_id: str) -> str:
    return f"{EVENTS_PREFIX}{job_id}"


def webhook_subject(job_id: str) -> str:
    return f"{WEBHOOKS_SUBJECT_PREFIX}{job_id}"


def until_header(seconds: float) -> str:
    """A header value for "until ``seconds`` from now" (``OFFER_DEADLINE_HEADER``,
    ``ANSWER_BY_HEADER``): Unix time in ms, which every replica's clock reads alike."""
    return str(int((time.time() + seconds) * 1000))


def seconds_left(headers: dict[str, str] | None, name: str) -> float | None:
    """How long until the time in header ``name`` (negative once passed); ``None`` when the
    message has no such header, or one that is not a time."""
    value = (headers or {}).get(name, "")
    return int(value) / 1000 - time.time() if value.isdigit() else None


def server_urls(url: str) -> list[str]:
    """Every server of ``NATS_URL``: one URL, or several separated by commas (a cluster's
    nodes; the client picks one at random and fails over to the others)."""
    servers = [part.strip() for part in url.split(",") if part.strip()]
    if not servers:
        raise ValueError("NATS_URL names no server")
    return servers


def is_transient(exc: BaseException) -> bool:
    """A JetStream API failure worth retrying: a timeout (the request reached a server
    whose stream or meta leader is being elected), no responders (no JetStream server
    answered yet; a publish says "no response from stream"), or an API error a cluster
    gives while it elects or misses a peer."""
    if isinstance(
        exc,
        NatsTimeoutError | NoRespondersError | NoStreamResponseError | ServiceUnavailableError,
    ):
        return True
    return isinstance(exc, APIError) and exc.err_code in TRANSIENT_API_CODES


async def retry_transient(
    call: Callable[[], Awaitable[_T]], what: str, *, within_s: float = API_RETRY_S
) -> _T:
    """``call()``, again after a pause while it fails transiently (``is_transient``), for
    up to ``within_s``; then, or on any other error, the error stands."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    delay = 0.1
    while True:
        try:
            return await call()
        except Exception as exc:
            if not is_transient(exc) or loop.time() + delay > deadline:
                raise
            log.info(
                "jetstream_api_retry",
                call=what,
                error=type(exc).__name__,
                code=getattr(exc, "err_code", None),
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


async def connect(url: str, name: str, *, wait_s: float = 60.0) -> NatsClient:
    """Connect to any server of ``url`` (one, or a comma-separated cluster), waiting up to
    ``wait_s`` for one to answer; afterwards reconnect forever, to whichever is up."""
    servers = server_urls(url)

    async def on_disconnect() -> None:
        log.warning("nats_disconnected")

    async def on_reconnect() -> None:
        log.info("nats_reconnected")

    async def on_error(exc: Exception) -> None:
        log.warning("nats_error", error=type(exc).__name__)

    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        try:
            return await nats.connect(
                servers=servers,
                name=name,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                connect_timeout=2,
                disconnected_cb=on_disconnect,
                reconnected_cb=on_reconnect,
                error_cb=on_error,
                # Publishes made while reconnecting wait in this buffer (bytes).
                pending_size=64 * 1024 * 1024,
                # A server that stops answering (paused, partitioned: its TCP connection
                # stays open) is left for another after two unanswered pings, 4-6 s,
                # rather than the client's default of four minutes.
                ping_interval=2,
                max_outstanding_pings=2,
            )
        except (NoServersError, OSError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.info("nats_not_ready")
            await asyncio.sleep(0.5)


async def close(nc: NatsClient, timeout_s: float = 5.0) -> None:
    """Drain (flush pending publishes and acks, end subscriptions), bounded in time.

    An outstanding pull request can keep ``drain`` waiting for its full expiry; a process
    that is shutting down has already finished or handed back its work, so it closes.
    """
    try:
        await asyncio.wait_for(nc.drain(), timeout_s)
    except Exception as exc:
        log.warning("nats_drain_incomplete", error=type(exc).__name__)
        if not nc.is_closed:
            await nc.close()


async def ensure_streams(js: JetStreamContext, replicas: int = 1) -> None:
    """Create or update the streams; idempotent and safe from many replicas.

    ``replicas`` is JetStream's R (3 in production); every service must pass the same value,
    or an update would scale the streams down again. Each call is retried while a cluster
    elects its leaders (``retry_transient``); an update only when the config differs, so
    replicas starting together do not each propose a change.
    """
    for config in (
        _work_queue(STEPS_STREAM, f"{STEPS_SUBJECT_PREFIX}>", replicas),
        _work_queue(EXPRESS_STREAM, f"{EXPRESS_SUBJECT_PREFIX}>", replicas),
        _work_queue(UPDATES_STREAM, "jobs.updates.>", replicas),
        # A delivery lives until its last try (a day of back-off at most, by default); the
        # week covers notifiers that were down, or had no WEBHOOK_SECRET, for a while.
        _work_queue(WEBHOOKS_STREAM, f"{WEBHOOKS_SUBJECT_PREFIX}>", replicas),
    ):
        await retry_transient(partial(_ensure_stream, js, config), f"stream {config.name}")


async def _ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    assert config.name is not None
    try:
        info = await js.stream_info(config.name)
    except NotFoundError:
        try:
            await js.add_stream(config)
            return
        except BadRequestError:  # created meanwhile by another replica
            info = await js.stream_info(config.name)
    if not _same_stream(info.config, config):
        await js.update_stream(config)


def _same_stream(current: StreamConfig, wanted: StreamConfig) -> bool:
    """Whether the fields this module sets already hold (the server fills in others)."""
    return all(
        getattr(current, f) == getattr(wanted, f)
        for f in (
            "subjects",
            "retention",
            "storage",
            "discard",
            "duplicate_window",
            "max_age",
            "num_replicas",
        )
    )


def _work_queue(name: str, subjects: str, replicas: int) -> StreamConfig:
    """A work-queue stream in files: a message lives until a consumer acks it, a week at
    most; a message id published again within the duplicate window is dropped."""
    return StreamConfig(
        name=name,
        subjects=[subjects],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        duplicate_window=DUPLICATE_WINDOW_S,
        max_age=7 * 24 * 3600.0,
        num_replicas=replicas,
    )


async def ensure_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> None:
    """Create the durable consumer unless it exists; concurrent replicas creating it with
    the same config is harmless. Its replicas follow the stream's (``NATS_STREAM_REPLICAS``
    through ``ensure_streams``): an R3 stream gets R3 consumers, whose state (acks,
    deliveries) survives the loss of a node. An existing consumer with other replicas, or a
    push consumer that delivers elsewhere (one created before the shared deliver subject),
    is updated. Retried while a cluster elects its leaders."""
    await retry_transient(
        lambda: _ensure_consumer(js, stream, config), f"consumer {config.durable_name}"
    )


async def _ensure_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> None:
    durable = config.durable_name
    assert durable is not None
    replicas = (await js.stream_info(stream)).config.num_replicas or 1
    config = dataclasses.replace(config, num_replicas=replicas)
    try:
        info = await js.consumer_info(stream, durable)
    except NotFoundError:
        await js.add_consumer(stream, config)
        return
    moved = bool(config.deliver_subject) and info.config.deliver_subject != config.deliver_subject
    if moved or (info.config.num_replicas or replicas) != replicas:
        await js.add_consumer(stream, config)


def worker_consumer_config(ack_wait_s: float, max_deliver: int) -> ConsumerConfig:
    return _pull_consumer(
        WORKER_CONSUMER, f"{STEPS_SUBJECT_PREFIX}>", ack_wait_s, max_deliver, 10_000
    )


def worker_express_consumer_config(ack_wait_s: float, max_deliver: int) -> ConsumerConfig:
    return _pull_consumer(
        WORKER_EXPRESS_CONSUMER, f"{EXPRESS_SUBJECT_PREFIX}>", ack_wait_s, max_deliver, 10_000
    )


def _pull_consumer(
    name: str, subjects: str, ack_wait_s: float, max_deliver: int, max_ack_pending: int
) -> ConsumerConfig:
    """A durable pull consumer of every message on ``subjects``, acked one by one."""
    return ConsumerConfig(
        durable_name=name,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        filter_subject=subjects,
        ack_wait=ack_wait_s,
        max_deliver=max_deliver,
        max_ack_pending=max_ack_pending,
        max_waiting=512,
    )


def orchestrator_consumer_config(ack_wait_s: float, max_deliver: int) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=ORCHESTRATOR_CONSUMER,
        # One subject every replica subscribes to in the queue group. Left to the client,
        # each replica that finds no consumer at start-up would create it with its own
        # inbox, and only the last one would ever receive anything.
        deliver_subject=ORCHESTRATOR_DELIVER_SUBJECT,
        deliver_group=ORCHESTRATOR_CONSUMER,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        filter_subject="jobs.updates.>",
        ack_wait=ack_wait_s,
        max_deliver=max_deliver,
        max_ack_pending=4096,
    )


def webhook_consumer_config(ack_wait_s: float) -> ConsumerConfig:
    """The notifiers' consumer of webhook deliveries. Unlimited deliveries at JetStream's
    level: the notifier counts the tries in Postgres and ends a delivery itself (delivered
    or dead). A delivery waiting for its next try counts as ack-pending for that long, so
    the bound on those is high: a receiver that is down holds all of its deliveries."""
    return _pull_consumer(WEBHOOK_CONSUMER, f"{WEBHOOKS_SUBJECT_PREFIX}>", ack_wait_s, -1, 100_000)


MessageHandler = Callable[[Msg], Awaitable[None]]
