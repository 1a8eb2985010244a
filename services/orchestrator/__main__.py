"""orchestrator: drives every job's state machine. Wiring only."""

from __future__ import annotations

import asyncio
import os

from jobkit.artifacts import open_store
from jobkit.db import KEYED_LOOKUPS
from jobkit.dispatch_gate import DispatchGate
from jobkit.logging import get_logger
from jobkit.outbox import OutboxRelay
from jobkit.runtime import Service, finish, run
from jobkit.step_tokens import StepTokens
from jobtypes import CATALOG
from services.orchestrator import gauges
from services.orchestrator.config import Settings
from services.orchestrator.consumer import Orchestrator
from services.orchestrator.dispatcher import Dispatcher
from services.orchestrator.retention import Retention

log = get_logger("orchestrator")


async def main() -> None:
    settings = Settings.from_env(os.environ)
    async with Service.start("orchestrator", settings.common) as service:
        pool = await service.postgres(max_size=10, planner=KEYED_LOOKUPS)
        nc = await service.nats()
        js = nc.jetstream()
        relay = OutboxRelay(pool, js)
        gate = DispatchGate(nc)
        await gate.follow()
        dispatcher = Dispatcher(
            pool, nc, js, gate, settings.dispatch, lease_s=settings.timing.lease_s
        )
        orchestrator = Orchestrator(
            pool,
            nc,
            js,
            relay,
            batch_size=settings.batch_size,
            timing=settings.timing,
            prices=settings.prices,
            step_tokens=(
                StepTokens(settings.step_token_secret, job_types=CATALOG.reading_history())
                if settings.step_token_secret
                else None
            ),
            gate=gate,
            hand_out=dispatcher.hand_out,
        )
        await orchestrator.subscribe(settings.ack_wait_s, settings.max_deliver)
        log.info("orchestrator_started")
        loop = asyncio.get_running_loop()

        def stalled() -> bool:
            # The consumer loop wakes at least every few seconds, NATS or not.
            return loop.time() - orchestrator.last_progress >= settings.timing.stalled_after_s

        consumer = service.background(orchestrator.run())
        service.background(relay.run())
        service.background(orchestrator.expire_leases_and_deadlines_forever())
        retention = Retention(
            pool,
            retention_s=settings.timing.retention_s,
            scan_s=settings.timing.retention_scan_s,
            artifacts=open_store(settings.object_store),
            artifact_types=CATALOG.saving_artifacts(),
            artifact_scan_s=settings.timing.artifact_scan_s,
            upload_ttl_s=settings.timing.upload_ttl_s,
        )
        service.background(retention.erase_expired_forever())
        service.background(retention.erase_artifacts_forever())
        service.background(orchestrator.tick_forever())
        service.background(dispatcher.run())
        # Ready while it takes inputs; alive unless its loop is stuck or NATS gave up (a
        # NATS outage takes it out of readiness, never restarts it).
        await service.serve_health(
            settings.health_addr,
            ready=lambda: nc.is_connected and not stalled(),
            alive=lambda: not (stalled() or nc.is_closed),
        )
        if service.metrics_port is not None:
            service.background(gauges.poll_forever(pool, js, settings.metrics_poll_s))

        async def stop_consuming() -> None:
            # The batch in hand commits; queued inputs are handed back for another replica.
            await orchestrator.stop()
            await finish(consumer, settings.shutdown_grace_s)

        service.on_stop(stop_consuming)
        service.on_stop(dispatcher.drain)
        service.on_stop(relay.drain)
        await service.until_stopped()


if __name__ == "__main__":
    run(main())
