"""ai_worker: runs step handlers pulled from JetStream. Wiring only."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from jobkit import bus
from jobkit.logging import configure_logging, get_logger
from jobkit.metrics import start_metrics_server
from jobkit.probe import beat_forever
from jobkit.runtime import run, shutdown_event
from jobkit.tracing import configure_tracing
from services.ai_worker import cv_handlers, jobtypes, noop
from services.ai_worker.config import Settings
from services.ai_worker.consumer import Worker
from services.ai_worker.handlers import Registry
from services.ai_worker.providers import ChatProvider, provider_for

log = get_logger("ai_worker")


def build_registry(provider: ChatProvider) -> Registry:
    registry = Registry()
    noop.register(registry)
    cv_handlers.register(registry, cv_handlers.writer_for(provider))
    jobtypes.register_all(registry, provider)
    missing = registry.missing()
    if missing:
        raise RuntimeError(f"no handler for: {', '.join(missing)}")
    return registry


async def main() -> None:
    settings = Settings.from_env(os.environ)
    configure_logging("ai_worker", settings.common.log_level)
    configure_tracing("ai_worker", settings.common.otlp_endpoint)
    start_metrics_server(settings.common.metrics_addr)
    stop = shutdown_event()
    provider = provider_for(settings)
    registry = build_registry(provider)
    model = settings.ai_model if provider.name == "openai" else None
    log.info("ai_provider_selected", provider=provider.name, model=model)
    nc = await bus.connect(settings.common.nats_url, "ai_worker")
    js = nc.jetstream()
    await bus.ensure_streams(js, settings.common.stream_replicas)
    worker = Worker(
        nc,
        js,
        registry,
        concurrency=settings.concurrency,
        ack_wait_s=settings.ack_wait_s,
        heartbeat_s=settings.heartbeat_s,
        max_step_deliveries=settings.max_step_deliveries,
    )
    await worker.start()
    log.info("worker_started", concurrency=settings.concurrency)
    try:
        async with asyncio.TaskGroup() as tasks:
            runner = tasks.create_task(worker.run())
            beats = tasks.create_task(
                beat_forever(Path(settings.health_file), lambda: nc.is_connected)
            )
            await stop.wait()
            log.info("shutting_down")
            worker.stop()
            try:
                await asyncio.wait_for(asyncio.shield(runner), settings.shutdown_grace_s)
            except TimeoutError:
                runner.cancel()
            beats.cancel()
        await worker.close()
    finally:
        await bus.close(nc)
        await provider.aclose()
        log.info("stopped")


if __name__ == "__main__":
    run(main())
