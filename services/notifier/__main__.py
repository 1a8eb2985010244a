"""notifier: the jobs.v1.NotifierService gRPC server, and the webhook deliveries. Wiring
only."""

from __future__ import annotations

import os

from jobkit.auth import Authenticator, watch_tokens_from_settings
from jobkit.gen.jobs.v1 import notifier_service_pb2, notifier_service_pb2_grpc
from jobkit.logging import get_logger
from jobkit.rpc import GrpcServer
from jobkit.runtime import Service, finish, run
from services.notifier.config import Settings
from services.notifier.deliveries import Deliveries
from services.notifier.fanout import EventHub
from services.notifier.sender import Sender
from services.notifier.servicer import NotifierServicer
from services.notifier.webhooks import Signer

log = get_logger("notifier")


async def main() -> None:
    settings = Settings.from_env(os.environ)
    async with Service.start("notifier", settings.common) as service:
        pool = await service.postgres(max_size=20)
        # The streams too: the webhook deliveries' consumer needs JOB_WEBHOOKS.
        nc = await service.nats()
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
        hooks = settings.webhooks
        if hooks is None:
            log.warning("webhooks_disabled", reason="WEBHOOK_SECRET is not set")
        else:
            sender = Sender(
                Signer(hooks.secrets),
                hooks.allow_hosts,
                timeout_s=hooks.timeout_s,
                connect_timeout_s=hooks.connect_timeout_s,
            )
            service.on_close(sender.close)
            deliveries = Deliveries(
                nc,
                pool,
                sender,
                hooks.retry,
                concurrency=hooks.concurrency,
                ack_wait_s=hooks.ack_wait_s,
            )
            await deliveries.start()
            runner = service.background(deliveries.run())

            async def stop_delivering() -> None:
                # The tries in hand end within their timeout; what is left comes back.
                deliveries.stop()
                await finish(runner, hooks.timeout_s)
                await deliveries.close()

            service.on_stop(stop_delivering)
        await service.until_stopped()


if __name__ == "__main__":
    run(main())
