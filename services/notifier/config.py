"""notifier's settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from jobkit.auth import AuthSettings
from jobkit.config import CommonSettings, env_float, env_int, env_str
from jobkit.limits import Limits
from jobkit.webhooks import allow_hosts_from_env
from services.notifier.webhooks import RetryPolicy, parse_secrets


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """How the notifier delivers webhooks (``services/notifier/deliveries.py``)."""

    #: ``WEBHOOK_SECRET``: the signing secrets (two during a rotation).
    secrets: tuple[str, ...] = field(repr=False)
    #: ``WEBHOOK_ALLOW_HOSTS``: hosts exempt from the address rules (as job_api's).
    allow_hosts: frozenset[str]
    retry: RetryPolicy
    #: One try's whole budget: resolving, connecting, sending, the response's status.
    timeout_s: float
    #: Of which resolving and connecting, each.
    connect_timeout_s: float
    #: Tries in progress at once on this replica.
    concurrency: int

    @property
    def ack_wait_s(self) -> float:
        """Longer than any try: a try still running is never delivered to a second one."""
        return self.timeout_s + 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebhookSettings | None:
        """None without ``WEBHOOK_SECRET``: nothing can be signed, so nothing is sent and
        deliveries wait in JetStream for a notifier that has one."""
        raw = env.get("WEBHOOK_SECRET", "").strip()
        if not raw:
            return None
        return cls(
            secrets=parse_secrets(raw),
            allow_hosts=allow_hosts_from_env(env),
            retry=RetryPolicy(
                max_attempts=env_int(env, "WEBHOOK_MAX_ATTEMPTS", 33, minimum=1),
                backoff_s=env_float(env, "WEBHOOK_BACKOFF_S", 5.0, minimum=0.01),
                backoff_max_s=env_float(env, "WEBHOOK_BACKOFF_MAX_S", 3600.0, minimum=0.01),
            ),
            timeout_s=env_float(env, "WEBHOOK_TIMEOUT_S", 10.0, minimum=0.1),
            connect_timeout_s=env_float(env, "WEBHOOK_CONNECT_TIMEOUT_S", 5.0, minimum=0.1),
            concurrency=env_int(env, "WEBHOOK_CONCURRENCY", 32, minimum=1),
        )


@dataclass(frozen=True, slots=True)
class Settings:
    common: CommonSettings
    grpc_addr: str
    auth: AuthSettings
    #: A watcher that heard nothing for this long checks Postgres for missed events.
    limits: Limits
    resync_after_s: float
    #: Live events buffered per watcher before it falls back to replaying from Postgres.
    watcher_buffer: int
    shutdown_grace_s: float
    #: None: no WEBHOOK_SECRET, no deliveries from this replica.
    webhooks: WebhookSettings | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            common=CommonSettings.from_env(env),
            grpc_addr=env_str(env, "GRPC_ADDR", "127.0.0.1:50052"),
            auth=AuthSettings.from_env(env),
            limits=Limits.from_env(env),
            resync_after_s=env_float(env, "WATCH_RESYNC_S", 1.0, minimum=0.05),
            watcher_buffer=env_int(env, "WATCH_BUFFER", 256, minimum=8),
            shutdown_grace_s=env_float(env, "SHUTDOWN_GRACE_S", 5.0),
            webhooks=WebhookSettings.from_env(env),
        )
