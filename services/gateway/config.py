"""gateway's settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from jobkit.config import env_float, env_int, env_str
from jobkit.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Settings:
    host: str
    port: int
    job_api_addr: str
    notifier_addr: str
    #: Origins allowed to call from another site (CORS); empty: none. "*" allows any
    #: origin, without credentials.
    cors_origins: tuple[str, ...]
    #: Largest request body; a larger one is answered 413 before it is read.
    max_body_bytes: int
    #: Largest upload (``POST /v1/uploads``), whose body is a file streamed to job_api.
    max_upload_bytes: int
    #: Deadline of each unary call to job_api or notifier.
    upstream_timeout_s: float
    #: A ``: keepalive`` comment this often on an idle event stream.
    keepalive_s: float
    #: A client that accepts no data for this long is disconnected (it resumes later).
    send_timeout_s: float
    log_level: str
    shutdown_grace_s: float

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        host, port = _host_port(env_str(env, "HTTP_ADDR", "127.0.0.1:8080"))
        return cls(
            host=host,
            port=port,
            job_api_addr=env_str(env, "JOB_API_ADDR", "127.0.0.1:50051"),
            notifier_addr=env_str(env, "NOTIFIER_ADDR", "127.0.0.1:50052"),
            cors_origins=tuple(
                o.strip().rstrip("/") for o in env.get("CORS_ORIGINS", "").split(",") if o.strip()
            ),
            max_body_bytes=env_int(env, "GATEWAY_MAX_BODY_BYTES", 2 * 1024 * 1024, minimum=1024),
            max_upload_bytes=env_int(
                env, "GATEWAY_MAX_UPLOAD_BYTES", 64 * 1024 * 1024, minimum=1024
            ),
            upstream_timeout_s=env_float(env, "GATEWAY_UPSTREAM_TIMEOUT_S", 30.0, minimum=0.1),
            keepalive_s=env_float(env, "SSE_KEEPALIVE_S", 15.0, minimum=0.1),
            send_timeout_s=env_float(env, "SSE_SEND_TIMEOUT_S", 30.0, minimum=0.1),
            log_level=env_str(env, "LOG_LEVEL", "INFO").upper(),
            shutdown_grace_s=env_float(env, "SHUTDOWN_GRACE_S", 5.0),
        )


def _host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"HTTP_ADDR must be host:port, got {address!r}")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - an explicit ":8080"
