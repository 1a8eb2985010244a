"""orchestrator: drives every job's state machine. Wiring only."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from jobkit import bus
from jobkit.db import create_pool, migrate
from jobkit.logging import configure_logging, get_logger
from jobkit.metrics import start_metrics_server
from jobkit.outbox import OutboxRelay
from jobkit.probe import beat_forever
from jobkit.runtime import run, shutdown_event
from jobkit.tracing import configure_tracing
from services.orchestrator import gauges
from services.orchestrator.config import Settings
from services.orchestrator.consumer import Orchestrator

log = get_logger("orchestrator")


async def main() -> None:
    settings = Settings.from_env(os.environ)
    configure_logging("orchestrator", settings.common.log_level)
    configure_tracing("orchestrator", settings.common.otlp_endpoint)
    metrics_port = start_metrics_server(settings.common.metrics_addr)
    stop = shutdown_event()
    pool = await create_pool(settings.common.database_url, max_size=10)
    await migrate(pool)
    nc = await bus.connect(settings.common.nats_url, "orchestrator")
    js = nc.jetstream()
    await bus.ensure_streams(js, settings.common.stream_replicas)
    relay = OutboxRelay(pool, js)
    orchestrator = Orchestrator(
        pool,
        nc,
        js,
        relay,
        batch_size=settings.batch_size,
        timing=settings.timing,
        prices=settings.prices,
    )
    await orchestrator.subscribe(settings.ack_wait_s, settings.max_deliver)
    log.info("orchestrator_started")
    loop = asyncio.get_running_loop()

    def healthy() -> bool:
        # The consumer loop wakes at least every few seconds (the probe's heartbeat file
        # is touched only while it does) and NATS is connected.
        return nc.is_connected and loop.time() - orchestrator.last_progress < 30

    try:
        async with asyncio.TaskGroup() as tasks:
            consumer = tasks.create_task(orchestrator.run())
            background = [
                tasks.create_task(relay.run()),
                tasks.create_task(orchestrator.expire_leases_forever()),
                tasks.create_task(orchestrator.erase_expired_forever()),
                tasks.create_task(orchestrator.tick_forever()),
                tasks.create_task(beat_forever(Path(settings.health_file), healthy)),
            ]
            if metrics_port is not None:
                background.append(
                    tasks.create_task(gauges.poll_forever(pool, js, settings.metrics_poll_s))
                )
            await stop.wait()
            log.info("shutting_down")
            await orchestrator.stop()
            try:
                await asyncio.wait_for(asyncio.shield(consumer), settings.shutdown_grace_s)
            except TimeoutError:
                consumer.cancel()
            await relay.drain()
            for task in background:
                task.cancel()
    finally:
        await bus.close(nc)
        await pool.close()
        log.info("stopped")


if __name__ == "__main__":
    run(main())
