"""ai_worker's settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from jobkit.artifacts import ObjectStoreSettings
from jobkit.config import CommonSettings, env_float, env_int, env_str
from jobkit.errors import ConfigError
from stepkit.providers import ChatProvider, LocalProvider, OpenAIProvider


@dataclass(frozen=True, slots=True)
class Settings:
    common: CommonSettings
    #: Steps run at once by this replica.
    concurrency: int
    #: Slots beyond ``concurrency`` kept for the express lane (``JOB_EXPRESS``): a
    #: newcomer's first step while the workers are saturated. At least 1: job_api sends
    #: such steps there whatever the workers are, so every worker must take them.
    express_slots: int
    #: Of ``concurrency``, slots left out of the pull requests while no backlog waits, for
    #: new jobs' first steps offered straight to a free worker (``jobkit.offers``); 0:
    #: every step comes through JetStream.
    offer_slots: int
    #: JetStream redelivers a step whose worker went silent for this long.
    ack_wait_s: float
    #: Sign of life to JetStream and the orchestrator while a step runs.
    heartbeat_s: float
    #: A step attempt delivered more often than this without a result is failed.
    max_step_deliveries: int
    #: Where gRPC health answers Kubernetes' probes (``Service.serve_health``); empty: off.
    health_addr: str
    #: ``local`` (templates, offline) or ``openai`` (an OpenAI-compatible endpoint).
    ai_provider: str
    openai_base_url: str
    #: Never in a repr, a log line or an error message.
    openai_api_key: str = field(repr=False)
    ai_model: str
    #: A model call taking longer than this in all fails with a retryable timeout.
    ai_request_timeout_s: float
    #: A model call with no first byte, or no new chunk, for this long is a stalled stream.
    ai_stall_timeout_s: float
    shutdown_grace_s: float
    #: Where steps save artifacts (``OBJECT_STORE_URL``); none: a step that saves one fails.
    object_store: ObjectStoreSettings | None = None
    #: job_api's gRPC address (``JOB_API_ADDR``), where steps that read their job owner's
    #: history (``data_export``) get it; empty: such steps fail, saying so.
    job_api_addr: str = "127.0.0.1:50051"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        ack_wait_s = env_float(env, "WORKER_ACK_WAIT_S", 30.0, minimum=1.0)
        heartbeat_s = env_float(env, "WORKER_HEARTBEAT_S", 5.0, minimum=0.1)
        if heartbeat_s > ack_wait_s / 2:
            raise ConfigError("WORKER_HEARTBEAT_S must be at most half of WORKER_ACK_WAIT_S")
        provider = env_str(env, "AI_PROVIDER", "local").lower()
        if provider not in ("local", "openai"):
            raise ConfigError("AI_PROVIDER must be 'local' or 'openai'")
        return cls(
            common=CommonSettings.from_env(env),
            concurrency=env_int(env, "WORKER_CONCURRENCY", 16, minimum=1),
            express_slots=env_int(env, "WORKER_EXPRESS_SLOTS", 2, minimum=1),
            offer_slots=env_int(env, "WORKER_OFFER_SLOTS", 2, minimum=0),
            ack_wait_s=ack_wait_s,
            heartbeat_s=heartbeat_s,
            max_step_deliveries=env_int(env, "WORKER_MAX_STEP_DELIVERIES", 5, minimum=1),
            health_addr=env_str(env, "HEALTH_ADDR", "127.0.0.1:50054"),
            ai_provider=provider,
            openai_base_url=env_str(env, "OPENAI_BASE_URL", "https://api.openai.com/v1"),
            openai_api_key=env_str(env, "OPENAI_API_KEY", ""),
            ai_model=env_str(env, "AI_MODEL", "gpt-4o-mini"),
            ai_request_timeout_s=env_float(env, "AI_REQUEST_TIMEOUT_S", 120.0, minimum=0.1),
            ai_stall_timeout_s=env_float(env, "AI_STALL_TIMEOUT_S", 30.0, minimum=0.1),
            shutdown_grace_s=env_float(env, "SHUTDOWN_GRACE_S", 10.0),
            object_store=ObjectStoreSettings.from_env(env),
            job_api_addr=env_str(env, "JOB_API_ADDR", "127.0.0.1:50051"),
        )


def provider_for(settings: Settings) -> ChatProvider:
    """The provider ``AI_PROVIDER`` names, configured from the worker's settings."""
    if settings.ai_provider == "openai":
        return OpenAIProvider(
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            model=settings.ai_model,
            request_timeout_s=settings.ai_request_timeout_s,
            stall_timeout_s=settings.ai_stall_timeout_s,
        )
    return LocalProvider()
