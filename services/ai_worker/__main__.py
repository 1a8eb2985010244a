"""ai_worker: runs step handlers pulled from JetStream. Wiring only."""

from __future__ import annotations

import os

from jobkit.artifacts import open_store
from jobkit.logging import get_logger
from jobkit.runtime import Service, finish, run
from jobtypes import CATALOG
from services.ai_worker.config import Settings, provider_for
from services.ai_worker.consumer import Worker
from services.ai_worker.history import HistoryClient
from services.ai_worker.registry import Registry

log = get_logger("ai_worker")


async def main() -> None:
    settings = Settings.from_env(os.environ)
    async with Service.start("ai_worker", settings.common) as service:
        provider = provider_for(settings)
        service.on_close(provider.aclose)
        registry = Registry.of(CATALOG, provider)
        model = settings.ai_model if provider.name == "openai" else None
        log.info("ai_provider_selected", provider=provider.name, model=model)
        nc = await service.nats()
        history = HistoryClient(settings.job_api_addr) if settings.job_api_addr else None
        if history is not None:
            service.on_close(history.close)
        worker = Worker(
            nc,
            nc.jetstream(),
            registry,
            concurrency=settings.concurrency,
            express_slots=settings.express_slots,
            offer_slots=settings.offer_slots,
            ack_wait_s=settings.ack_wait_s,
            heartbeat_s=settings.heartbeat_s,
            max_step_deliveries=settings.max_step_deliveries,
            artifacts=open_store(settings.object_store),
            history=history,
        )
        subscribed = False
        # Ready once it takes steps and while NATS is connected; alive unless NATS gave up
        # (an outage takes it out of readiness, never restarts it mid-step). Served before
        # the steps start coming, so a port that cannot be bound stops it first.
        health = await service.serve_health(
            settings.health_addr,
            ready=lambda: subscribed and nc.is_connected,
            alive=lambda: not nc.is_closed,
        )
        await worker.start()
        subscribed = True
        if health is not None:
            await health.refresh()
        log.info(
            "worker_started",
            concurrency=settings.concurrency,
            express_slots=settings.express_slots,
            offer_slots=settings.offer_slots,
        )
        runner = service.background(worker.run())

        async def stop_working() -> None:
            # Running handlers are cancelled and their steps handed back (nak) at once.
            worker.stop()
            await finish(runner, settings.shutdown_grace_s)
            await worker.close()

        service.on_stop(stop_working)
        await service.until_stopped()


if __name__ == "__main__":
    run(main())
