"""The whole system on one machine: Postgres, NATS, the four services and the browser
gateway as separate processes. ``make dev`` runs it in the foreground; the end-to-end
tests, the chaos suite and the benchmarks start it too, and kill, pause and restart its
parts. ``python -m devstack`` (``devstack/__main__.py``) is ``make dev``.
"""

from __future__ import annotations

import base64
import functools
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack.servers import (
    NatsCluster,
    NatsServer,
    PostgresPair,
    PostgresServer,
    SeaweedServer,
    free_port,
)
from jobkit.auth import mint_token

SERVICES = ("job_api", "orchestrator", "ai_worker", "notifier", "gateway")


def new_webhook_secret() -> str:
    """A webhook signing secret in the Standard Webhooks form: ``whsec_`` and 32 random
    bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass
class ServiceProcess:
    """One service, run as ``python -m services.<name>`` like a Kubernetes pod would."""

    name: str
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def metrics_url(self) -> str:
        """Its Prometheus endpoint (each service process gets a free port; the gateway
        serves it on its HTTP port)."""
        return f"http://{self.env.get('METRICS_ADDR') or self.env['HTTP_ADDR']}/metrics"

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        module = "services." + self.name.split("#")[0]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(sig)

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM and wait (a graceful shutdown); SIGKILL if it does not exit in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Stack:
    root: Path
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    #: The notifier's WEBHOOK_SECRET (a receiver verifies signatures with it).
    webhook_secret: str = field(default_factory=new_webhook_secret)
    job_api_port: int = field(default_factory=free_port)
    notifier_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    workers: int = 1
    orchestrators: int = 1
    extra_env: Mapping[str, str] = field(default_factory=dict)
    #: Run an object store (SeaweedFS) for artifacts, as ``make dev`` does.
    with_object_store: bool = False
    #: Postgres loads ``pg_stat_statements`` (``PostgresServer.statement_stats``).
    statement_stats: bool = False
    #: Run on a 3-node NATS cluster (R3 streams) and a Postgres primary with a synchronous
    #: standby, as production does, instead of one server of each.
    cluster: bool = False
    postgres: PostgresServer | None = None
    nats: NatsServer | None = None
    postgres_pair: PostgresPair | None = None
    nats_cluster: NatsCluster | None = None
    object_store: SeaweedServer | None = None
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    @property
    def job_api_addr(self) -> str:
        return f"127.0.0.1:{self.job_api_port}"

    @property
    def notifier_addr(self) -> str:
        return f"127.0.0.1:{self.notifier_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def token(self, subject: str = "dev-user", *, scopes: tuple[str, ...] = ()) -> str:
        """An HS256 token the stack accepts (with its issuer and audience, if configured)."""
        return mint_token(
            self.jwt_secret,
            subject,
            scopes=scopes,
            issuer=self.extra_env.get("JWT_ISSUER"),
            audience=self.extra_env.get("JWT_AUDIENCE"),
        )

    @property
    def database_url(self) -> str:
        """``DATABASE_URL``: the one server, or both hosts of the pair (read-write)."""
        if self.postgres_pair is not None:
            return self.postgres_pair.url
        assert self.postgres is not None
        return self.postgres.url

    @property
    def nats_url(self) -> str:
        """``NATS_URL``: the one server, or every node of the cluster."""
        if self.nats_cluster is not None:
            return self.nats_cluster.url
        assert self.nats is not None
        return self.nats.url

    def start_servers(self) -> None:
        if self.cluster:
            self.postgres_pair = PostgresPair(self.root).start()
            self.nats_cluster = NatsCluster(self.root).start()
        else:
            self.postgres = PostgresServer(
                self.root / "postgres", statement_stats=self.statement_stats
            ).start()
            self.nats = NatsServer(self.root / "nats").start()
        if self.with_object_store:
            self.object_store = SeaweedServer(self.root / "seaweedfs").start()

    def service_env(self, name: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.database_url,
            NATS_URL=self.nats_url,
            JWT_SECRET=self.jwt_secret,
            PYTHONUNBUFFERED="1",
        )
        if self.cluster:
            env["NATS_STREAM_REPLICAS"] = "3"
        if self.object_store is not None:
            env.update(self.object_store.env())
        if name == "job_api":
            env["GRPC_ADDR"] = self.job_api_addr
        if name == "notifier":
            env["GRPC_ADDR"] = self.notifier_addr
            env["WEBHOOK_SECRET"] = self.webhook_secret
        if name == "ai_worker":
            # Steps that read their job owner's history (data_export) get it from job_api.
            env["JOB_API_ADDR"] = self.job_api_addr
        if name == "gateway":
            env.update(
                HTTP_ADDR=f"127.0.0.1:{self.http_port}",
                JOB_API_ADDR=self.job_api_addr,
                NOTIFIER_ADDR=self.notifier_addr,
            )
        env.update(self.extra_env)
        return env

    def start_service(self, name: str) -> ServiceProcess:
        base = name.split("#")[0]
        file_name = name.replace("#", "-")
        env = self.service_env(base)
        if base in ("orchestrator", "ai_worker"):
            # One each, whatever the replicas: what wait_ready asks.
            env["HEALTH_ADDR"] = f"127.0.0.1:{free_port()}"
        if base == "gateway":
            env.pop("METRICS_ADDR", None)  # its /metrics is on its HTTP port
        elif "METRICS_ADDR" not in self.extra_env:
            env["METRICS_ADDR"] = f"127.0.0.1:{free_port()}"
        service = ServiceProcess(name, env, self.root / "logs" / f"{file_name}.log")
        self.services[name] = service.start()
        return service

    def start(self, timeout_s: float = 60.0) -> Stack:
        self.start_servers()
        names = ["job_api", "notifier", "gateway"]
        names += [f"orchestrator#{i}" if i else "orchestrator" for i in range(self.orchestrators)]
        names += [f"ai_worker#{i}" if i else "ai_worker" for i in range(self.workers)]
        for name in names:
            self.start_service(name)
        self.wait_ready(timeout_s)
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until both gRPC servers answer SERVING (which implies migrations have run), every
        orchestrator and worker answers its health check SERVING (it serves it once
        subscribed: a first job then finds a worker to take its step and an orchestrator to
        take its results) and, if it runs, the gateway is ready."""
        deadline = time.monotonic() + timeout_s
        checks: list[tuple[str, Callable[[], bool]]] = [
            (self.job_api_addr, lambda: _serving(self.job_api_addr)),
            (self.notifier_addr, lambda: _serving(self.notifier_addr)),
        ]
        for svc in self.services.values():
            if svc.name.split("#")[0] in ("orchestrator", "ai_worker"):
                checks.append((svc.name, functools.partial(_serving, svc.env["HEALTH_ADDR"])))
        if "gateway" in self.services:
            checks.append((self.gateway_url, self.gateway_ready))
        for what, ready in checks:
            while True:
                for svc in self.services.values():
                    if not svc.alive() and svc.proc is not None:
                        raise RuntimeError(f"{svc.name} exited; see {svc.log_path}")
                if ready():
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{what} not ready within {timeout_s}s")
                time.sleep(0.1)

    def gateway_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.gateway_url}/readyz", timeout=1) as reply:  # noqa: S310 - our own loopback URL
                return bool(reply.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        for service in self.services.values():
            service.signal(signal.SIGTERM)
        for service in self.services.values():
            service.stop()
        if self.nats:
            self.nats.stop()
        if self.nats_cluster:
            self.nats_cluster.stop()
        if self.postgres:
            self.postgres.stop()
        if self.postgres_pair:
            self.postgres_pair.stop()
        if self.object_store:
            self.object_store.stop()


def _serving(addr: str) -> bool:
    try:
        with grpc.insecure_channel(addr) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False
