"""notifier: the jobs.v1.NotifierService gRPC server. Wiring only."""

from __future__ import annotations

import os

from jobkit.auth import Authenticator, watch_tokens_from_settings
from jobkit.gen.jobs.v1 import notifier_service_pb2, notifier_service_pb2_grpc
from jobkit.rpc import GrpcServer
from jobkit.runtime import Service, run
from services.notifier.config import Settings
from services.notifier.fanout import EventHub
from services.notifier.servicer import NotifierServicer


async def main() -> None:
    settings = Settings.from_env(os.environ)
    async with Service.start("notifier", settings.common) as service:
        pool = await service.postgres(max_size=20)
        nc = await service.nats(streams=False)
        hub = EventHub(
            nc, pool, buffer=settings.watcher_buffer, resync_after_s=settings.resync_after_s
        )
        await hub.start()
        service.on_close(hub.close)
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
        await service.serve(server, grace_s=settings.shutdown_grace_s)
        service.background(hub.reconcile_forever())
        service.background(servicer.renew_sessions_forever())
        await service.until_stopped()


if __name__ == "__main__":
    run(main())
