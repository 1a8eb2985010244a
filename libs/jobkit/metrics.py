"""Prometheus metrics of the services, each defined once, here (names ``jobs_*``).

Every service imports this module, so every ``/metrics`` lists every metric (a service
leaves the ones it does not feed at zero or empty); dashboards select by the scrape
target's labels (``job``, ``pod``). Labels are bounded sets only: job types and step names
(from the catalogue), statuses and outcomes, gRPC method names and status codes, consumer
names. Never a job id, a user or a message.

``start_metrics_server`` serves them on ``METRICS_ADDR``; the default registry also carries
the client library's process and Python collectors (CPU, memory, file descriptors, GC).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from prometheus_client import (
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)

from jobkit.errors import ConfigError
from jobkit.lifecycle import EventType
from jobkit.logging import get_logger
from jobkit.model import JobChange, JobRecord

log = get_logger(__name__)

# No `*_created` timestamp series next to every counter and histogram: half the series,
# and nothing here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: Seconds; steps range from milliseconds (noop) to minutes (a model call).
_STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
#: Seconds; unary RPCs are milliseconds. A WatchJob stream lasts as long as its job.
_RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 300)

JOBS_CREATED = Counter(
    "jobs_created", "Jobs accepted by CreateJob (job_api), by job type.", ["type"]
)
CREATES_SHED = Counter(
    "jobs_creates_shed",
    "CreateJob calls refused at once, by why: in_flight (job_api had MAX_CREATES_IN_FLIGHT "
    "in progress) or backlog (MAX_BACKLOG step attempts waited for a worker).",
    ["reason"],
)
STEP_OFFERS = Counter(
    "jobs_step_offers",
    "New jobs' first steps offered to a free worker before JetStream (job_api), by lane "
    "(main, or express: a newcomer's while the workers are saturated) and outcome: taken, "
    "or refused (no free slot, no worker answering, or none listening; then the step went "
    "through JetStream).",
    ["lane", "outcome"],
)
EXPRESS_DECISIONS = Counter(
    "jobs_express_decisions",
    "Where job_api sent new jobs' first steps while the fair dispatcher held: express (a "
    "newcomer's, by the express lane), lane_full (newcomers' steps waited in the lane for "
    "a slot, so this one waited its turn, whoever's it was: many mean too few "
    "WORKER_EXPRESS_SLOTS for the newcomers coming), behind_own (a newcomer by count whose "
    "one job waits its turn: behind it).",
    ["decision"],
)
JOBS_FINISHED = Counter(
    "jobs_finished",
    "Jobs that reached a terminal status (orchestrator; CancelJob in job_api), by job type "
    "and status (SUCCEEDED, FAILED, CANCELLED).",
    ["type", "status"],
)
#: How a step attempt on a worker ended, as ``STEP_DURATION`` labels it.
StepOutcome = Literal["succeeded", "input_required", "failed", "cancelled", "handed_back"]

STEP_DURATION = Histogram(
    "jobs_step_duration_seconds",
    "Time a worker spent on one step attempt (ai_worker), by job type, step and outcome "
    "(succeeded, failed, cancelled, handed_back).",
    ["type", "step", "outcome"],
    buckets=_STEP_BUCKETS,
)
STEP_RETRIES = Counter(
    "jobs_step_retries",
    "Step attempts that failed and were scheduled again (orchestrator), by job type and step.",
    ["type", "step"],
)
QUEUE_PENDING = Gauge(
    "jobs_queue_pending_messages",
    "JetStream messages not yet delivered to the consumer (orchestrator polls), by consumer: "
    "ai_worker (step work), orchestrator (job updates) or notifier_webhooks (webhook "
    "deliveries).",
    ["consumer"],
)
QUEUE_ACK_PENDING = Gauge(
    "jobs_queue_ack_pending_messages",
    "JetStream messages delivered but not yet acknowledged (orchestrator polls), by consumer "
    "(notifier_webhooks: deliveries in a try or waiting for the next one).",
    ["consumer"],
)
OUTBOX_BACKLOG = Gauge(
    "jobs_outbox_backlog_rows",
    "Rows waiting in the outbox table (orchestrator polls), scheduled retries included, and "
    "first steps workers took when offered, each kept a lease's length (STEP_LEASE_S) in "
    "case its worker died.",
)
OUTBOX_OLDEST_DUE_AGE = Gauge(
    "jobs_outbox_oldest_due_age_seconds",
    "How long the oldest due outbox row has waited to be published; 0 when none is due "
    "(orchestrator polls). Up to about 3 s in normal running (a taken offer's row, due, "
    "waits for the sweeper); well above that, the relays cannot reach NATS.",
)
READY_WAITING = Gauge(
    "jobs_ready_waiting",
    "Step attempts due and waiting in the ready queue for the fair dispatcher "
    "(orchestrator, each dispatch round), by user bucket (a hash of the owner, 16 "
    "buckets: never a user) and priority. Zero while workers keep up.",
    ["user_bucket", "priority"],
)
READY_WAIT = Histogram(
    "jobs_ready_wait_seconds",
    "How long a step attempt waited in the ready queue before the fair dispatcher "
    "released it to the workers (orchestrator), by user bucket and priority.",
    ["user_bucket", "priority"],
    buckets=_STEP_BUCKETS,
)
DISPATCH_HELD = Gauge(
    "jobs_dispatch_held",
    "1 while workers are saturated and step attempts wait in the ready queue to be "
    "released fairly; 0 while they go to the workers straight away (orchestrator).",
)
ORCHESTRATOR_BATCH = Histogram(
    "jobs_orchestrator_batch_inputs",
    "Inputs (step reports, submissions) an orchestrator decided and committed in one "
    "transaction, by lane (``main``; ``express``: newcomers' results, decided apart). "
    "Larger under load: one commit carries more.",
    ["lane"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
CREATE_BATCH = Histogram(
    "jobs_create_batch_jobs",
    "New jobs job_api committed in one statement (``group_commit``): one when calls come "
    "one at a time, more while a commit is in flight.",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
DISPATCH_ROUNDS = Counter(
    "jobs_dispatch_rounds_total",
    "The fair dispatcher's rounds (orchestrator), by what each did: ``open`` (nothing "
    "held: JetStream alone asked), ``full`` (held, the window full: nothing to release), "
    "``released`` (attempts released), ``idle`` (the ready queue read, nothing released), "
    "``other_replica`` (another replica held the dispatch lock).",
    ["result"],
)
HANDED_OUT = Counter(
    "jobs_dispatch_handed_out",
    "Waiting step attempts the fair dispatcher kept for worker slots that results freed, "
    "and handed out in those results' answers rather than through JetStream "
    "(orchestrator).",
)
DISPATCH_QUEUE_READS = Counter(
    "jobs_dispatch_queue_reads_total",
    "The fair dispatcher's reads of the ready queue (orchestrator): ``exact`` (every due "
    "row counted) or ``in_turn`` (a wide or deep queue: the groups of each lane's next "
    "owners in turn, each counted up to what a round can release).",
    ["read"],
)
WATCH_STREAMS = Gauge("jobs_watch_streams_open", "WatchJob streams open on this notifier replica.")
RPC_DURATION = Histogram(
    "jobs_rpc_duration_seconds",
    "gRPC server calls (job_api, notifier), by method and status code; a streaming call "
    "is observed when its stream ends.",
    ["method", "code"],
    buckets=_RPC_BUCKETS,
)
GATEWAY_STREAMS = Gauge(
    "jobs_gateway_sse_streams_open",
    "Server-Sent Events streams open on this gateway replica (each one WatchJob call).",
)
GATEWAY_REQUEST_DURATION = Histogram(
    "jobs_gateway_request_duration_seconds",
    "HTTP requests to the gateway, by route template (e.g. /v1/jobs/{job_id}), method and "
    "HTTP status; an event stream is observed when it ends.",
    ["route", "method", "code"],
    buckets=_RPC_BUCKETS,
)

#: Seconds; one webhook try is bounded by WEBHOOK_TIMEOUT_S (10 s by default).
_WEBHOOK_TRY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: Seconds from an event to its webhook's delivery: one try, or up to a day of retries.
_WEBHOOK_LATENCY_BUCKETS = (
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600
)  # fmt: skip
WEBHOOK_ATTEMPTS = Counter(
    "jobs_webhook_attempts",
    "Webhook tries (notifier), by outcome: delivered (a 2xx), http_error (any other "
    "status), refused (the URL or an address it resolves to is one webhooks may not "
    "reach), dns, connect, timeout, tls, protocol.",
    ["outcome"],
)
WEBHOOK_DELIVERIES = Counter(
    "jobs_webhook_deliveries",
    "Webhook deliveries that ended (notifier), by outcome: delivered, dead (its last try "
    "failed: a dead letter) or dropped (its job was deleted first).",
    ["outcome"],
)
WEBHOOK_ATTEMPT_DURATION = Histogram(
    "jobs_webhook_attempt_duration_seconds",
    "One webhook try, from resolving the host to the response's status line (notifier), "
    "by outcome (as jobs_webhook_attempts).",
    ["outcome"],
    buckets=_WEBHOOK_TRY_BUCKETS,
)
WEBHOOK_DELIVERY_LATENCY = Histogram(
    "jobs_webhook_delivery_latency_seconds",
    "From an event's commit to its webhook's delivery, retries included (notifier).",
    buckets=_WEBHOOK_LATENCY_BUCKETS,
)


def parse_addr(raw: str) -> tuple[str, int] | None:
    """``host:port`` (``[::]:9464`` for IPv6; port 0: any free one) → (host, port);
    ``""`` or ``"0"`` → None (disabled)."""
    raw = raw.strip()
    if raw in ("", "0"):
        return None
    host, sep, port = raw.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"METRICS_ADDR must be host:port, or 0 to disable, got {raw!r}")
    return (host.strip("[]") or "0.0.0.0"), int(port)  # noqa: S104 - an explicit ":port"


def start_metrics_server(addr: str) -> int | None:
    """Serve ``/metrics`` on ``addr`` (``host:port``) from a daemon thread, so a scrape is
    answered even while the event loop is busy. Returns the port, or None when disabled."""
    parsed = parse_addr(addr)
    if parsed is None:
        return None
    host, port = parsed
    server, _thread = start_http_server(port, host)
    bound = int(server.server_port)
    log.info("metrics_listening", address=host, port=bound)
    return bound


MODEL_TOKENS = Counter(
    "jobs_model_tokens",
    "Model tokens used by committed step attempts (orchestrator), by model, job type and "
    "kind (prompt, completion).",
    ["model", "type", "kind"],
)
MODEL_COST = Counter(
    "jobs_model_cost_usd",
    "What those tokens cost by MODEL_PRICES (orchestrator), in US dollars, by model and job "
    "type; 0 for models without a price.",
    ["model", "type"],
)


def observe_changes(changes: Iterable[tuple[JobRecord, JobChange]]) -> None:
    """Count what a committed batch of decisions did: jobs finished, steps retried."""
    for before, change in changes:
        job = change.job
        if job.status.terminal and not before.status.terminal:
            JOBS_FINISHED.labels(job.type, job.status.value).inc()
        for event in change.events:
            if event.type is EventType.STEP_RETRYING:
                STEP_RETRIES.labels(job.type, event.step).inc()
        for usage in change.usage:
            MODEL_TOKENS.labels(usage.model, job.type, "prompt").inc(usage.prompt_tokens)
            MODEL_TOKENS.labels(usage.model, job.type, "completion").inc(usage.completion_tokens)
            MODEL_COST.labels(usage.model, job.type).inc(usage.cost_usd)


def observe_step(job_type: str, step: str, outcome: StepOutcome, seconds: float) -> None:
    """Time one attempt on a worker, by how it ended: its report said it ``succeeded``,
    asked for input (``input_required``) or ``failed``, or it sent none because its job
    was ``cancelled`` or it was ``handed_back`` (the worker stopping)."""
    STEP_DURATION.labels(job_type, step, outcome).observe(seconds)
