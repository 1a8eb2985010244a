"""Process entry and the shape of every service's lifetime.

Every service runs inside one ``Service``: it configures logging, tracing and metrics,
opens the Postgres pool (with migrations) and the NATS connection it asks for, runs the
long-lived loops in one task group (if one dies, the process exits and Kubernetes restarts
it), and on SIGTERM or SIGINT drains in the same order everywhere:

1. the stop steps, in the order they were registered (the server stops taking calls and
   finishes what it has; consumers hand back work; the outbox publishes what is left);
2. the background loops are cancelled;
3. the resources close in reverse order of opening (NATS drained before the pool closes).

A ``__main__`` is then wiring only::

    async with Service.start("job_api", settings.common) as service:
        pool = await service.postgres(max_size=20)
        nc = await service.nats()
        ...
        await service.serve(server, grace_s=settings.shutdown_grace_s)
        service.background(relay.run())
        service.on_stop(relay.drain)
        await service.until_stopped()
"""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from types import TracebackType
from typing import Any, Protocol

import asyncpg
from nats.aio.client import Client as NatsClient

from jobkit import bus
from jobkit.config import CommonSettings
from jobkit.db import create_pool, follow_primary, migrate
from jobkit.logging import configure_logging, get_logger
from jobkit.metrics import start_metrics_server
from jobkit.rpc import GrpcServer
from jobkit.tracing import configure_tracing

log = get_logger(__name__)

Step = Callable[[], Awaitable[None]]

#: How often a service without an API of its own checks its health (``serve_health``).
HEALTH_INTERVAL_S = 1.0


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a service's ``main()`` on uvloop when available."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(main)
        return
    uvloop.run(main)


def shutdown_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT: the signal to stop taking work and drain."""
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, event.set)
    return event


class Server(Protocol):
    """What ``Service.serve`` needs of a server (``jobkit.rpc.GrpcServer`` is one)."""

    async def start(self) -> None: ...

    async def stop(self, grace_s: float) -> None: ...

    async def set_serving(self, serving: bool) -> None: ...


class Service:
    """One service process's lifetime; see the module docstring for the order of things."""

    def __init__(
        self,
        name: str,
        *,
        log_level: str = "INFO",
        otlp_endpoint: str = "",
        metrics_addr: str = "",
        common: CommonSettings | None = None,
    ) -> None:
        self.name = name
        self._log_level = log_level
        self._otlp_endpoint = otlp_endpoint
        self._metrics_addr = metrics_addr
        self._common = common
        #: The Prometheus endpoint's port, or None when METRICS_ADDR is off.
        self.metrics_port: int | None = None
        self._stop: asyncio.Event | None = None
        self._tasks = asyncio.TaskGroup()
        self._background: list[asyncio.Task[Any]] = []
        self._stop_steps: list[Step] = []
        self._closers: list[Step] = []
        self._pool: asyncpg.Pool | None = None

    @classmethod
    def start(cls, name: str, common: CommonSettings) -> Service:
        """A service with the settings every service shares."""
        return cls(
            name,
            log_level=common.log_level,
            otlp_endpoint=common.otlp_endpoint,
            metrics_addr=common.metrics_addr,
            common=common,
        )

    async def __aenter__(self) -> Service:
        configure_logging(self.name, self._log_level)
        configure_tracing(self.name, self._otlp_endpoint)
        self.metrics_port = start_metrics_server(self._metrics_addr)
        self._stop = shutdown_event()
        await self._tasks.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            for task in self._background:
                task.cancel()
            await self._tasks.__aexit__(exc_type, exc, tb)
        finally:
            for close in reversed(self._closers):
                try:
                    await close()
                except Exception as error:  # one failing close must not skip the rest
                    log.warning("close_failed", error=type(error).__name__)
            log.info("stopped")

    def _settings(self) -> CommonSettings:
        if self._common is None:
            raise RuntimeError(f"{self.name} was started without the common settings")
        return self._common

    async def postgres(
        self, *, max_size: int, planner: Mapping[str, str] | None = None
    ) -> asyncpg.Pool:
        """The pool, once Postgres accepts connections and the schema is migrated (its
        sessions with the ``planner`` settings: ``db.KEYED_LOOKUPS``)."""
        pool = await create_pool(self._settings().database_url, max_size=max_size, planner=planner)
        self.on_close(pool.close)
        await migrate(pool)
        self._pool = pool
        return pool

    async def nats(self, *, streams: bool = True) -> NatsClient:
        """The NATS connection (drained on the way out); with ``streams``, the JetStream
        streams created or updated first."""
        settings = self._settings()
        nc = await bus.connect(settings.nats_url, self.name)
        self.on_close(lambda: bus.close(nc))
        if streams:
            await bus.ensure_streams(nc.jetstream(), settings.stream_replicas)
        return nc

    async def serve(self, server: Server, *, grace_s: float) -> None:
        """Start ``server``; at shutdown it stops first, finishing calls for ``grace_s``.
        With a pool, its health follows the Postgres primary (``db.follow_primary``)."""
        await server.start()
        self.on_stop(lambda: server.stop(grace_s))
        if self._pool is not None:
            self.background(follow_primary(self._pool, server.set_serving))

    async def serve_health(
        self,
        address: str,
        *,
        ready: Callable[[], bool],
        alive: Callable[[], bool],
        interval_s: float = HEALTH_INTERVAL_S,
    ) -> OwnHealth | None:
        """For a service with no API of its own (orchestrator, ai_worker): gRPC health
        and reflection on ``address`` (none if empty), what Kubernetes' gRPC probes ask.
        ``""`` is SERVING while ``ready()`` (in traffic terms: taking work), ``liveness``
        while ``alive()``; both are checked every ``interval_s``, and whenever
        ``OwnHealth.refresh`` is called. An event loop that hangs answers neither."""
        if not address:
            return None
        server = GrpcServer(address, (), lambda _: None)
        await server.start()
        self.on_stop(lambda: server.stop(0))
        health = OwnHealth(server, ready, alive)
        await health.refresh()
        self.background(health.follow(interval_s))
        return health

    def background(self, loop: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run a long-lived loop in the service's task group (cancelled at shutdown after
        the stop steps; if it fails, the whole process stops)."""
        task = self._tasks.create_task(loop)
        self._background.append(task)
        return task

    def on_stop(self, step: Step) -> None:
        """Run ``step`` at shutdown, after the steps registered before it."""
        self._stop_steps.append(step)

    def on_close(self, close: Step) -> None:
        """Close a resource on the way out, before the ones opened earlier."""
        self._closers.append(close)

    async def until_stopped(self) -> None:
        """Serve until SIGTERM or SIGINT, then run the stop steps in order."""
        assert self._stop is not None, "use the Service as an async context manager"
        settle_heap()
        await self._stop.wait()
        log.info("shutting_down")
        for step in self._stop_steps:
            await step()


class OwnHealth:
    """The health a service without an API of its own serves (``Service.serve_health``),
    kept up with its ``ready`` and ``alive`` checks."""

    def __init__(
        self, server: GrpcServer, ready: Callable[[], bool], alive: Callable[[], bool]
    ) -> None:
        self._server = server
        self._ready = ready
        self._alive = alive
        #: What was last served; none before the first ``refresh``, which is not logged.
        self._was: tuple[bool, bool] | None = None

    async def refresh(self) -> None:
        ready, alive = self._ready(), self._alive()
        was, self._was = self._was, (ready, alive)
        if was is None or ready != was[0]:
            await self._server.set_serving(ready)
            if was is not None:
                (log.info if ready else log.warning)("readiness_changed", ready=ready)
        if was is None or alive != was[1]:
            await self._server.set_alive(alive)
            if was is not None:
                (log.info if alive else log.warning)("liveness_changed", alive=alive)

    async def follow(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await self.refresh()


def settle_heap() -> None:
    """Start-up is over: what it made (modules, protos, pools: most of the heap) is never
    scanned by the collector again, and full collections come ten times less often. A full
    collection stops the event loop for as long as it takes to scan every object: 0.3-0.7 s
    in a gateway holding 2,000 streams, milliseconds on any job's path elsewhere."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 100)


async def finish(task: asyncio.Task[Any], grace_s: float) -> None:
    """Let ``task`` end by itself for up to ``grace_s``, then cancel it."""
    try:
        await asyncio.wait_for(asyncio.shield(task), grace_s)
    except TimeoutError:
        task.cancel()
