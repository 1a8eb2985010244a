"""The orchestrator's settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from jobkit.artifacts import ObjectStoreSettings
from jobkit.config import CommonSettings, env_float, env_int, env_str
from jobkit.pricing import PriceTable
from jobkit.step_tokens import step_token_secret
from services.orchestrator.state_machine import DEFAULT_LEASE_S


@dataclass(frozen=True, slots=True)
class Timing:
    """The orchestrator's clocks (all seconds)."""

    #: An attempt with no sign of life from its worker for this long is presumed lost.
    lease_s: float = DEFAULT_LEASE_S
    #: How often to look for expired leases.
    lease_scan_s: float = 1.0
    #: Finished jobs are erased this long after they finish.
    retention_s: float = 24 * 3600.0
    #: How often to erase expired jobs.
    retention_scan_s: float = 60.0
    #: How often to delete deleted jobs' artifacts from the object store.
    artifact_scan_s: float = 5.0
    #: Uploads are erased this long after they were made.
    upload_ttl_s: float = 7 * 24 * 3600.0
    #: An idle consumer loop still wakes this often, to prove it is alive.
    tick_s: float = 5.0
    #: The process is unhealthy once its consumer loop has not come round for this long.
    stalled_after_s: float = 30.0


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    """The fair dispatcher's (``dispatcher.py``)."""

    #: Step attempts JetStream may hold that no worker has taken: what the workers take
    #: in ``window_s`` (``DISPATCH_WINDOW_S``), and at least ``window``
    #: (``DISPATCH_WINDOW``). More wait in Postgres, where the order is chosen. Longer:
    #: fairer later (a light user's job waits behind that much of the heavy user's);
    #: shorter: the workers may wait for a round.
    window: int = 4
    window_s: float = 0.03
    #: Writers start holding once JetStream queues this many attempts no worker has
    #: taken (``DISPATCH_HOLD_AT``): a burst below it goes first in, first out at no
    #: cost; a backlog past it is shared fairly, and kept to the window from then on.
    hold_at: int = 64
    #: Between rounds while there is work to decide (``DISPATCH_ROUND_S``).
    round_s: float = 0.01
    #: Between rounds otherwise (``DISPATCH_IDLE_ROUND_S``): how soon saturation is seen.
    idle_round_s: float = 0.05


@dataclass(frozen=True, slots=True)
class Settings:
    common: CommonSettings
    #: Most reports committed in one transaction.
    batch_size: int
    #: Redelivery of an unacknowledged input; inputs are acked right after their commit.
    ack_wait_s: float
    #: Deliveries of one input before it is given up as poison (and logged).
    max_deliver: int
    timing: Timing
    #: What model tokens cost (``MODEL_PRICES``), applied when a step's result commits.
    prices: PriceTable
    #: Where gRPC health answers Kubernetes' probes (``Service.serve_health``); empty: off.
    health_addr: str
    shutdown_grace_s: float
    #: How often queue lag and outbox backlog are read into the metrics.
    metrics_poll_s: float = 5.0
    #: Where jobs' artifacts are (``OBJECT_STORE_URL``): deleted jobs' are erased there.
    object_store: ObjectStoreSettings | None = None
    #: Signs the step tokens of the job types that read their owner's history
    #: (``STEP_TOKEN_SECRET``, else ``JWT_SECRET``); job_api verifies them.
    step_token_secret: str | None = field(default=None, repr=False)
    #: The fair dispatcher's window and rounds (``dispatcher.py``).
    dispatch: DispatchSettings = field(default_factory=DispatchSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            common=CommonSettings.from_env(env),
            batch_size=env_int(env, "ORCHESTRATOR_BATCH_SIZE", 256, minimum=1),
            ack_wait_s=env_float(env, "ORCHESTRATOR_ACK_WAIT_S", 30.0, minimum=1.0),
            # -1: never give up on an input; a failing one is retried with back-off and
            # logged, because dropping it could strand a job.
            max_deliver=env_int(env, "ORCHESTRATOR_MAX_DELIVER", -1, minimum=-1),
            timing=Timing(
                lease_s=env_float(env, "STEP_LEASE_S", DEFAULT_LEASE_S, minimum=1.0),
                lease_scan_s=env_float(env, "LEASE_SCAN_S", 1.0, minimum=0.05),
                retention_s=env_float(env, "JOB_TTL_S", 24 * 3600.0, minimum=1.0),
                retention_scan_s=env_float(env, "RETENTION_SCAN_S", 60.0, minimum=0.1),
                artifact_scan_s=env_float(env, "ARTIFACT_SCAN_S", 5.0, minimum=0.1),
                upload_ttl_s=env_float(env, "UPLOAD_TTL_S", 7 * 24 * 3600.0, minimum=1.0),
            ),
            prices=PriceTable.parse(env.get("MODEL_PRICES", "")),
            health_addr=env_str(env, "HEALTH_ADDR", "127.0.0.1:50053"),
            shutdown_grace_s=env_float(env, "SHUTDOWN_GRACE_S", 10.0),
            metrics_poll_s=env_float(env, "METRICS_POLL_S", 5.0, minimum=0.1),
            object_store=ObjectStoreSettings.from_env(env),
            dispatch=DispatchSettings(
                window=env_int(env, "DISPATCH_WINDOW", 4, minimum=1),
                window_s=env_float(env, "DISPATCH_WINDOW_S", 0.03, minimum=0.0),
                hold_at=env_int(env, "DISPATCH_HOLD_AT", 64, minimum=1),
                round_s=env_float(env, "DISPATCH_ROUND_S", 0.01, minimum=0.001),
                idle_round_s=env_float(env, "DISPATCH_IDLE_ROUND_S", 0.05, minimum=0.001),
            ),
            step_token_secret=step_token_secret(env),
        )
