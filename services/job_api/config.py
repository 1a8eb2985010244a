"""job_api's settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from jobkit.artifacts import ObjectStoreSettings
from jobkit.auth import AuthSettings
from jobkit.config import CommonSettings, env_float, env_int, env_str
from jobkit.errors import ConfigError
from jobkit.limits import Limits
from jobkit.offers import DEFAULT_STEP_LEASE_S
from jobkit.planning import DEFAULT_MAX_INPUT_BYTES
from jobkit.step_tokens import step_token_secret
from jobkit.webhooks import allow_hosts_from_env


def _required(name: str) -> str:
    raise ConfigError(f"{name} must be set when JWT_SECRET is not")


@dataclass(frozen=True, slots=True)
class Settings:
    common: CommonSettings
    grpc_addr: str
    auth: AuthSettings
    #: Serialized size limit of a job's input.
    max_input_bytes: int
    limits: Limits
    #: Key that signs page tokens so a client cannot forge one.
    page_token_secret: str
    shutdown_grace_s: float
    #: Send a new job's first step to the workers with the commit that creates it (1), or
    #: submit the job for an orchestrator to start (0): for an upgrade from a release whose
    #: orchestrators do not yet start a queued job on its first step's report.
    dispatch_first_step: bool = True
    #: Offer a new job's first step to a free worker before JetStream (``OFFER_STEPS``,
    #: ``jobkit.offers``); a taken one is delivered again through JetStream if its worker
    #: says nothing for ``step_lease_s`` (``STEP_LEASE_S``, the orchestrators' setting).
    offer_steps: bool = True
    step_lease_s: float = DEFAULT_STEP_LEASE_S
    #: Where jobs' artifacts are (``OBJECT_STORE_URL``), for DownloadArtifact; none: every
    #: download is NOT_FOUND.
    object_store: ObjectStoreSettings | None = None
    #: Largest file CreateUpload takes.
    max_upload_bytes: int = 64 * 1024 * 1024
    #: Signs a new job's first step token (job types that read their owner's history) and
    #: verifies every step token ExportService is shown (``STEP_TOKEN_SECRET``, else
    #: ``JWT_SECRET``).
    step_token_secret: str | None = field(default=None, repr=False)
    #: CreateJob calls in progress at once before more are refused (0: no bound).
    max_creates_in_flight: int = 512
    #: CreateJob is refused while this many step attempts wait for a worker (0: no bound).
    max_backlog: int = 0
    #: ``WEBHOOK_ALLOW_HOSTS``: webhook hosts exempt from the address rules (and allowed
    #: http), as the notifier's.
    webhook_allow_hosts: frozenset[str] = frozenset()
    #: How long CreateJob waits for DNS to check a webhook URL's host.
    webhook_resolve_timeout_s: float = 5.0
    #: ``BULK_JOBS_PER_SECOND``: how many jobs BulkRetryJobs and BulkCancelJobs change per
    #: second on this replica, all calls together (``services/job_api/pacing.py``).
    bulk_jobs_per_second: float = 50.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            common=CommonSettings.from_env(env),
            grpc_addr=env_str(env, "GRPC_ADDR", "127.0.0.1:50051"),
            auth=AuthSettings.from_env(env),
            max_input_bytes=env_int(env, "MAX_INPUT_BYTES", DEFAULT_MAX_INPUT_BYTES, minimum=1024),
            limits=Limits.from_env(env),
            # Page tokens only need a stable server-side key; reuse the JWT secret when there
            # is one so a single secret configures a dev deployment.
            max_creates_in_flight=env_int(env, "MAX_CREATES_IN_FLIGHT", 512, minimum=0),
            max_backlog=env_int(env, "MAX_BACKLOG", 0, minimum=0),
            page_token_secret=env_str(env, "PAGE_TOKEN_SECRET", env.get("JWT_SECRET", ""))
            or _required("PAGE_TOKEN_SECRET"),
            shutdown_grace_s=env_float(env, "SHUTDOWN_GRACE_S", 10.0),
            dispatch_first_step=env_int(env, "DISPATCH_FIRST_STEP", 1) != 0,
            offer_steps=env_int(env, "OFFER_STEPS", 1) != 0,
            step_lease_s=env_float(env, "STEP_LEASE_S", DEFAULT_STEP_LEASE_S, minimum=1.0),
            object_store=ObjectStoreSettings.from_env(env),
            max_upload_bytes=env_int(env, "MAX_UPLOAD_BYTES", 64 * 1024 * 1024, minimum=1024),
            step_token_secret=step_token_secret(env),
            webhook_allow_hosts=allow_hosts_from_env(env),
            webhook_resolve_timeout_s=env_float(env, "WEBHOOK_CONNECT_TIMEOUT_S", 5.0, minimum=0.1),
            bulk_jobs_per_second=env_float(env, "BULK_JOBS_PER_SECOND", 50.0, minimum=0.1),
        )
