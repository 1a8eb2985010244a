"""job_api's settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from jobkit.config import CommonSettings, env_float, env_int, env_str
from jobkit.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Settings:
    common: CommonSettings
    grpc_addr: str
    jwt_secret: str
    jwt_issuer: str | None
    jwt_audience: str | None
    #: Serialized size limit of a job's input.
    max_input_bytes: int
    #: Key that signs page tokens so a client cannot forge one.
    page_token_secret: str
    shutdown_grace_s: float

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        secret = env_str(env, "JWT_SECRET", "")
        if not secret:
            raise ConfigError("JWT_SECRET must be set")
        return cls(
            common=CommonSettings.from_env(env),
            grpc_addr=env_str(env, "GRPC_ADDR", "127.0.0.1:50051"),
            jwt_secret=secret,
            jwt_issuer=env_str(env, "JWT_ISSUER", "") or None,
            jwt_audience=env_str(env, "JWT_AUDIENCE", "") or None,
            max_input_bytes=env_int(env, "MAX_INPUT_BYTES", 1024 * 1024, minimum=1024),
            page_token_secret=env_str(env, "PAGE_TOKEN_SECRET", secret),
            shutdown_grace_s=env_float(env, "SHUTDOWN_GRACE_S", 10.0),
        )
