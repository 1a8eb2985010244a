"""job_api: the jobs.v1.JobService gRPC server. Wiring only."""

from __future__ import annotations

import os

import grpc

from jobkit.artifacts import open_store
from jobkit.auth import Authenticator, watch_tokens_from_settings
from jobkit.db import KEYED_LOOKUPS
from jobkit.dispatch_gate import DispatchGate
from jobkit.gen.jobs.internal.v1 import export_pb2_grpc
from jobkit.gen.jobs.v1 import job_service_pb2, job_service_pb2_grpc
from jobkit.offers import StepOffers
from jobkit.outbox import OutboxRelay
from jobkit.rpc import GrpcServer
from jobkit.runtime import Service, run
from jobkit.step_tokens import StepTokens
from jobtypes import CATALOG
from services.job_api.admission import Admission
from services.job_api.config import Settings
from services.job_api.export import ExportServicer
from services.job_api.pacing import Pacer
from services.job_api.page_tokens import PageTokens
from services.job_api.servicer import JobServicer


async def main() -> None:
    settings = Settings.from_env(os.environ)
    async with Service.start("job_api", settings.common) as service:
        pool = await service.postgres(max_size=20, planner=KEYED_LOOKUPS)
        nc = await service.nats()
        offers = StepOffers(nc, lease_s=settings.step_lease_s) if settings.offer_steps else None
        relay = OutboxRelay(pool, nc.jetstream(), offers=offers)
        gate = DispatchGate(nc)
        await gate.follow()
        step_tokens = (
            StepTokens(settings.step_token_secret, job_types=CATALOG.reading_history())
            if settings.step_token_secret
            else None
        )
        servicer = JobServicer(
            pool,
            nc,
            relay,
            Authenticator.from_settings(settings.auth),
            PageTokens(settings.page_token_secret),
            max_input_bytes=settings.max_input_bytes,
            dispatch_first_step=settings.dispatch_first_step,
            limits=settings.limits,
            watch_tokens=watch_tokens_from_settings(settings.auth),
            artifacts=open_store(settings.object_store),
            max_upload_bytes=settings.max_upload_bytes,
            step_tokens=step_tokens,
            admission=Admission(settings.max_creates_in_flight),
            gate=gate,
            max_backlog=settings.max_backlog,
            webhook_allow_hosts=settings.webhook_allow_hosts,
            webhook_resolve_timeout_s=settings.webhook_resolve_timeout_s,
            bulk_pacer=Pacer(settings.bulk_jobs_per_second),
        )
        exporter = ExportServicer(pool, step_tokens)

        def register(server: grpc.aio.Server) -> None:
            job_service_pb2_grpc.add_JobServiceServicer_to_server(servicer, server)
            # Internal (workers' steps, with step tokens): served, not listed by reflection.
            export_pb2_grpc.add_ExportServiceServicer_to_server(exporter, server)

        server = GrpcServer(
            settings.grpc_addr,
            [job_service_pb2.DESCRIPTOR.services_by_name["JobService"].full_name],
            register,
            max_message_bytes=settings.max_input_bytes + 64 * 1024,
        )
        await service.serve(server, grace_s=settings.shutdown_grace_s)
        service.background(relay.run())
        # Rows committed by the last calls are published before NATS is drained.
        service.on_stop(relay.drain)
        await service.until_stopped()


if __name__ == "__main__":
    run(main())
