"""NATS JetStream: connection, streams, consumers and subjects.

Streams (file storage, work-queue retention: a message lives until one consumer acks it):

- ``JOB_STEPS`` (``jobs.steps.<type>.<step>``): step attempts for ai_worker replicas,
  pulled by the durable consumer ``ai_worker``.
- ``JOB_UPDATES`` (``jobs.updates.submitted``, ``jobs.updates.report``): what the
  orchestrator consumes — new jobs and workers' step reports — through the durable,
  queue-grouped consumer ``orchestrator``.
- ``JOB_WEBHOOKS`` (``jobs.webhooks.<job_id>``): webhook deliveries, enqueued through the
  outbox with their events, pulled by the notifiers' durable consumer ``notifier_webhooks``;
  a failed try is handed back with the delay before the next one (``nak(delay)``).

Core NATS (no stream) carries what Postgres already holds durably and a subscriber can
recover by other means: ``jobs.events.<job_id>`` (committed events, for the notifier, which
replays gaps from Postgres) and ``jobs.cancel`` (stop-this-step notices to workers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import NoServersError
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
from nats.js.errors import BadRequestError, NotFoundError

from jobkit.logging import get_logger

log = get_logger(__name__)

STEPS_STREAM = "JOB_STEPS"
STEPS_SUBJECT_PREFIX = "jobs.steps."
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
ORCHESTRATOR_CONSUMER = "orchestrator"
ORCHESTRATOR_DELIVER_SUBJECT = "jobs.deliver.orchestrator"

#: How long JetStream remembers a Nats-Msg-Id: an outbox re-publish within it is dropped.
DUPLICATE_WINDOW_S = 600.0


def step_subject(job_type: str, step: str) -> str:
    return f"{STEPS_SUBJECT_PREFIX}{job_type}.{step}"


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


async def connect(url: str, name: str, *, wait_s: float = 60.0) -> NatsClient:
    """Connect, waiting up to ``wait_s`` for the server; afterwards reconnect forever."""

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
                url,
                name=name,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                connect_timeout=2,
                disconnected_cb=on_disconnect,
                reconnected_cb=on_reconnect,
                error_cb=on_error,
                # Publishes made while reconnecting wait in this buffer (bytes).
                pending_size=64 * 1024 * 1024,
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
    or an update would scale the streams down again.
    """
    for config in (
        _work_queue(STEPS_STREAM, f"{STEPS_SUBJECT_PREFIX}>", replicas),
        _work_queue(UPDATES_STREAM, "jobs.updates.>", replicas),
        # A delivery lives until its last try (a day of back-off at most, by default); the
        # week covers notifiers that were down, or had no WEBHOOK_SECRET, for a while.
        _work_queue(WEBHOOKS_STREAM, f"{WEBHOOKS_SUBJECT_PREFIX}>", replicas),
    ):
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)


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
    the same config is harmless. An existing push consumer that delivers elsewhere (one
    created before the shared deliver subject) is pointed at it."""
    assert config.durable_name is not None
    try:
        info = await js.consumer_info(stream, config.durable_name)
    except NotFoundError:
        await js.add_consumer(stream, config)
        return
    if config.deliver_subject and info.config.deliver_subject != config.deliver_subject:
        await js.add_consumer(stream, config)


def worker_consumer_config(ack_wait_s: float, max_deliver: int) -> ConsumerConfig:
    return _pull_consumer(
        WORKER_CONSUMER, f"{STEPS_SUBJECT_PREFIX}>", ack_wait_s, max_deliver, 10_000
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
