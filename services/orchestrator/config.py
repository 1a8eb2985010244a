"""The orchestrator's settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from jobkit.config import CommonSettings, env_float, env_int


@dataclass(frozen=True, slots=True)
class Settings:
    common: CommonSettings
    #: Most reports committed in one transaction.
    batch_size: int
    #: Redelivery of an unacknowledged input; inputs are acked right after their commit.
    ack_wait_s: float
    #: Deliveries of one input before it is given up as poison (and logged).
    max_deliver: int
    shutdown_grace_s: float

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            common=CommonSettings.from_env(env),
            batch_size=env_int(env, "ORCHESTRATOR_BATCH_SIZE", 256, minimum=1),
            ack_wait_s=env_float(env, "ORCHESTRATOR_ACK_WAIT_S", 30.0, minimum=1.0),
            max_deliver=env_int(env, "ORCHESTRATOR_MAX_DELIVER", 20, minimum=1),
            shutdown_grace_s=env_float(env, "SHUTDOWN_GRACE_S", 10.0),
        )
