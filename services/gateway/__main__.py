"""gateway: HTTP/JSON and Server-Sent Events for browsers, in front of job_api and
notifier. Wiring only."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator

import uvicorn

from jobkit.logging import get_logger
from jobkit.runtime import Service, run
from services.gateway.app import create_app
from services.gateway.config import Settings
from services.gateway.events import EventStreams
from services.gateway.upstream import Upstreams

log = get_logger("gateway")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process's lifetime is jobkit.runtime's,
    as in every other service."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def main() -> None:
    settings = Settings.from_env(os.environ)
    # Its metrics are on its own HTTP port (/metrics); it has no Postgres or NATS.
    async with Service("gateway", log_level=settings.log_level) as service:
        upstreams = Upstreams(settings.job_api_addr, settings.notifier_addr)
        service.on_close(lambda: upstreams.close(grace_s=1.0))
        streams = EventStreams()
        config = uvicorn.Config(
            create_app(settings, upstreams, streams),
            host=settings.host,
            port=settings.port,
            loop="none",  # already on uvloop (jobkit.runtime.run)
            http="httptools",
            lifespan="off",
            # uvicorn's access log prints URLs, and query strings can hold watch tokens:
            # the app logs each request itself, by route template.
            access_log=False,
            log_config=None,
            server_header=False,
            timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s),
        )
        server = _Server(config)
        log.info("http_listening", address=settings.host, port=settings.port)
        serving = service.background(server.serve())

        async def stop_serving() -> None:
            # Open event streams end (their clients resume elsewhere from Last-Event-ID);
            # requests in flight finish within the grace period.
            streams.close()
            server.should_exit = True
            await serving

        service.on_stop(stop_serving)
        await service.until_stopped()


if __name__ == "__main__":
    run(main())
