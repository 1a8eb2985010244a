"""The Celery peer's app and task: ``celery -A bench.peers.celery_app worker`` runs it.

One task, ``bench_chain_step``, chained three times (``celery.chain``): when one finishes
the worker that ran it sends the next, so each task defers the next, as in our ``noop``
job and in the procrastinate peer.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

#: The Redis the broker and the result backend use (set by ``celery_peer``).
REDIS_ENV = "BENCH_PEER_REDIS"

STEP = "bench_chain_step"


def make_app(redis_url: str, pool_limit: int = 10) -> Any:
    """The app, for the workers and for the client: Redis as broker (database 0) and result
    backend (database 1); late acknowledgement, so a task a dead worker was running is
    delivered again, as our steps are; JSON; everything else Celery's defaults.
    ``pool_limit``: the client's broker connections, so that many submissions can be in
    flight at once (Celery's default is 10)."""
    app = Celery("bench_peer", broker=f"{redis_url}/0", backend=f"{redis_url}/1")
    app.conf.update(
        task_acks_late=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        broker_pool_limit=pool_limit,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )

    @app.task(name=STEP, shared=False)  # type: ignore[untyped-decorator]
    def step(previous: object = None) -> None:
        return None

    return app


app = make_app(os.environ.get(REDIS_ENV, "redis://127.0.0.1:6379"))
