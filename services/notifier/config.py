"""notifier's settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from jobkit.auth import AuthSettings
from jobkit.config import CommonSettings, env_float, env_int, env_str
from jobkit.limits import Limits


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
        )
