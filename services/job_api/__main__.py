"""job_api: the jobs.v1.JobService gRPC server. Wiring only."""

from __future__ import annotations

import asyncio
import os

from jobkit import bus
from jobkit.auth import Authenticator, watch_tokens_from_settings
from jobkit.db import create_pool, migrate
from jobkit.gen.jobs.v1 import job_service_pb2, job_service_pb2_grpc
from jobkit.logging import configure_logging, get_logger
from jobkit.metrics import start_metrics_server
from jobkit.outbox import OutboxRelay
from jobkit.rpc import GrpcServer
from jobkit.runtime import run, shutdown_event
from jobkit.tracing import configure_tracing
from services.job_api.config import Settings
from services.job_api.page_tokens import PageTokens
from services.job_api.servicer import JobServicer

log = get_logger("job_api")


async def main() -> None:
    settings = Settings.from_env(os.environ)
    configure_logging("job_api", settings.common.log_level)
    configure_tracing("job_api", settings.common.otlp_endpoint)
    start_metrics_server(settings.common.metrics_addr)
    stop = shutdown_event()
    pool = await create_pool(settings.common.database_url, max_size=20)
    await migrate(pool)
    nc = await bus.connect(settings.common.nats_url, "job_api")
    js = nc.jetstream()
    await bus.ensure_streams(js, settings.common.stream_replicas)
    relay = OutboxRelay(pool, js)
    servicer = JobServicer(
        pool,
        nc,
        relay,
        Authenticator.from_settings(settings.auth),
        PageTokens(settings.page_token_secret),
        max_input_bytes=settings.max_input_bytes,
        limits=settings.limits,
        watch_tokens=watch_tokens_from_settings(settings.auth),
    )
    server = GrpcServer(
        settings.grpc_addr,
        [job_service_pb2.DESCRIPTOR.services_by_name["JobService"].full_name],
        lambda s: job_service_pb2_grpc.add_JobServiceServicer_to_server(servicer, s),
        max_message_bytes=settings.max_input_bytes + 64 * 1024,
    )
    await server.start()
    try:
        async with asyncio.TaskGroup() as tasks:
            sweeper = tasks.create_task(relay.run())
            await stop.wait()
            log.info("shutting_down")
            await server.stop(settings.shutdown_grace_s)
            await relay.drain()
            sweeper.cancel()
    finally:
        await bus.close(nc)
        await pool.close()
        log.info("stopped")


if __name__ == "__main__":
    run(main())
