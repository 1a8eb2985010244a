"""notifier: the jobs.v1.NotifierService gRPC server. Wiring only."""

from __future__ import annotations

import asyncio
import os

from jobkit import bus
from jobkit.auth import Authenticator, watch_tokens_from_settings
from jobkit.db import create_pool, migrate
from jobkit.gen.jobs.v1 import notifier_service_pb2, notifier_service_pb2_grpc
from jobkit.logging import configure_logging, get_logger
from jobkit.metrics import start_metrics_server
from jobkit.rpc import GrpcServer
from jobkit.runtime import run, shutdown_event
from jobkit.tracing import configure_tracing
from services.notifier.config import Settings
from services.notifier.fanout import EventHub
from services.notifier.servicer import NotifierServicer

log = get_logger("notifier")


async def main() -> None:
    settings = Settings.from_env(os.environ)
    configure_logging("notifier", settings.common.log_level)
    configure_tracing("notifier", settings.common.otlp_endpoint)
    start_metrics_server(settings.common.metrics_addr)
    stop = shutdown_event()
    pool = await create_pool(settings.common.database_url, max_size=20)
    await migrate(pool)
    nc = await bus.connect(settings.common.nats_url, "notifier")
    hub = EventHub(nc, pool, buffer=settings.watcher_buffer, resync_after_s=settings.resync_after_s)
    await hub.start()
    servicer = NotifierServicer(
        pool,
        hub,
        Authenticator.from_settings(settings.auth),
        settings.limits,
        watch_tokens_from_settings(settings.auth),
    )
    server = GrpcServer(
        settings.grpc_addr,
        [notifier_service_pb2.DESCRIPTOR.services_by_name["NotifierService"].full_name],
        lambda s: notifier_service_pb2_grpc.add_NotifierServiceServicer_to_server(servicer, s),
    )
    await server.start()
    try:
        async with asyncio.TaskGroup() as tasks:
            background = [
                tasks.create_task(hub.reconcile_forever()),
                tasks.create_task(servicer.renew_sessions_forever()),
            ]
            await stop.wait()
            log.info("shutting_down")
            await server.stop(settings.shutdown_grace_s)
            for task in background:
                task.cancel()
    finally:
        await hub.close()
        await bus.close(nc)
        await pool.close()
        log.info("stopped")


if __name__ == "__main__":
    run(main())
