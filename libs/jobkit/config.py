"""Reading settings from the environment.

Each service reads its settings once, in its ``__main__``, into a frozen dataclass built
with these helpers; nothing deeper in the code looks at ``os.environ``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from jobkit.errors import ConfigError

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/jobs"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"


def env_str(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value or default


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class CommonSettings:
    """Settings every service shares."""

    database_url: str
    nats_url: str
    log_level: str
    #: JetStream stream replicas (R); 3 in production.
    stream_replicas: int
    #: ``host:port`` of the Prometheus ``/metrics`` endpoint; empty or ``0``: none.
    metrics_addr: str = ""
    #: OTLP endpoint spans are exported to (needs the ``tracing`` extra); empty: none.
    otlp_endpoint: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CommonSettings:
        return cls(
            database_url=env_str(env, "DATABASE_URL", DEFAULT_DATABASE_URL),
            nats_url=env_str(env, "NATS_URL", DEFAULT_NATS_URL),
            log_level=env_str(env, "LOG_LEVEL", "INFO").upper(),
            stream_replicas=env_int(env, "NATS_STREAM_REPLICAS", 1, minimum=1),
            metrics_addr=env_str(env, "METRICS_ADDR", ""),
            otlp_endpoint=env_str(env, "OTEL_EXPORTER_OTLP_ENDPOINT", ""),
        )
