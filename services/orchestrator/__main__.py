"""orchestrator: drives every job's state machine. Wiring only."""

from __future__ import annotations

import asyncio
import os

from jobkit import bus
from jobkit.db import create_pool, migrate
from jobkit.logging import configure_logging, get_logger
from jobkit.outbox import OutboxRelay
from jobkit.runtime import run, shutdown_event
from services.orchestrator.config import Settings
from services.orchestrator.consumer import Orchestrator

log = get_logger("orchestrator")


async def main() -> None:
    settings = Settings.from_env(os.environ)
    configure_logging("orchestrator", settings.common.log_level)
    stop = shutdown_event()
    pool = await create_pool(settings.common.database_url, max_size=10)
    await migrate(pool)
    nc = await bus.connect(settings.common.nats_url, "orchestrator")
    js = nc.jetstream()
    await bus.ensure_streams(js)
    relay = OutboxRelay(pool, js)
    orchestrator = Orchestrator(pool, nc, js, relay, batch_size=settings.batch_size)
    await orchestrator.subscribe(settings.ack_wait_s, settings.max_deliver)
    log.info("orchestrator_started")
    try:
        async with asyncio.TaskGroup() as tasks:
            loops = [tasks.create_task(orchestrator.run()), tasks.create_task(relay.run())]
            await stop.wait()
            log.info("shutting_down")
            await orchestrator.stop_taking_work()
            for loop in loops:
                loop.cancel()
    finally:
        await bus.close(nc)
        await pool.close()
        log.info("stopped")


if __name__ == "__main__":
    run(main())
