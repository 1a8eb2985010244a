"""The benchmark's handles on a running stack: gRPC stubs over several connections, a
Postgres connection and a NATS connection of its own, and ``quiesce``.
"""

from __future__ import annotations

import asyncio
import resource
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import nats
from google.protobuf import struct_pb2
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from devstack import Stack
from jobkit import bus
from jobkit.db import KEYED_LOOKUPS
from jobkit.gen.jobs.v1 import (
    job_service_pb2,
    job_service_pb2_grpc,
    jobs_pb2,
    notifier_service_pb2_grpc,
)
from jobkit.publish import committed_events

from .procs import Watched

if TYPE_CHECKING:
    from jobkit.gen.jobs.v1.job_service_pb2_grpc import JobServiceAsyncStub
    from jobkit.gen.jobs.v1.notifier_service_pb2_grpc import NotifierServiceAsyncStub

#: The system as deployed, minus per-user limits: one benchmark user submits everything.
BENCH_ENV: Mapping[str, str] = {
    "RATE_LIMIT_PER_MINUTE": "0",
    "MAX_RUNNING_JOBS_PER_USER": "0",
    "MAX_WATCHES_PER_USER": "0",
    "LOG_LEVEL": "WARNING",
}

TERMINAL_EVENTS = frozenset(
    {
        jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED,
        jobs_pb2.JOB_EVENT_TYPE_FAILED,
        jobs_pb2.JOB_EVENT_TYPE_CANCELLED,
    }
)
TERMINAL_STATUSES = ["SUCCEEDED", "FAILED", "CANCELLED"]


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit: 2000 streams need more than 1024 sockets
    in the notifier. The services inherit it, since the stack starts them from here."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def noop_request(**input: Any) -> job_service_pb2.CreateJobRequest:
    payload = struct_pb2.Struct()
    payload.update(input)
    return job_service_pb2.CreateJobRequest(type="noop", input=payload)


def published_events(payload: bytes) -> list[tuple[str, int]]:
    """(job id, sequence) of each event in one message on ``jobs.events.<job>``, the
    subject the notifiers listen on: what the harness taps to time the publish."""
    return [(e.job_id, e.sequence) for e in committed_events(payload)]


def event_time(event: jobs_pb2.JobEvent) -> float:
    """An event's ``occurred_at`` as a Unix timestamp (the orchestrator's wall clock)."""
    return event.occurred_at.seconds + event.occurred_at.nanos / 1e9


def _channel(addr: str) -> grpc.aio.Channel:
    # A local subchannel pool gives every channel its own TCP connection; by default
    # channels to one address with the same arguments share one HTTP/2 connection.
    return grpc.aio.insecure_channel(
        addr,
        options=[
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.max_receive_message_length", 16 * 1024 * 1024),
        ],
    )


@dataclass
class Harness:
    stack: Stack
    pg: asyncpg.Connection
    nc: NatsClient
    js: JetStreamContext
    metadata: tuple[tuple[str, str], ...]
    api_channels: list[grpc.aio.Channel]
    notifier_channels: list[grpc.aio.Channel]
    api: list[JobServiceAsyncStub]
    notifier: list[NotifierServiceAsyncStub]
    _users: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    @classmethod
    async def open(cls, stack: Stack, *, api_channels: int, notifier_channels: int) -> Harness:
        assert stack.postgres is not None
        assert stack.nats is not None
        # Its polls read jobs by id: planned as lookups, as the services plan theirs, so
        # the harness's own reads do not scan the table it is filling (their CPU counts
        # as Postgres's).
        pg = await asyncpg.connect(stack.postgres.url, server_settings=dict(KEYED_LOOKUPS))
        nc = await nats.connect(stack.nats.url, name="bench")
        api = [_channel(stack.job_api_addr) for _ in range(api_channels)]
        notifier = [_channel(stack.notifier_addr) for _ in range(notifier_channels)]
        await asyncio.gather(*(c.channel_ready() for c in (*api, *notifier)))
        return cls(
            stack=stack,
            pg=pg,
            nc=nc,
            js=nc.jetstream(),
            metadata=_bearer(stack, "bench"),
            api_channels=api,
            notifier_channels=notifier,
            api=[job_service_pb2_grpc.JobServiceStub(c) for c in api],
            notifier=[notifier_service_pb2_grpc.NotifierServiceStub(c) for c in notifier],
        )

    async def close(self) -> None:
        for channel in (*self.api_channels, *self.notifier_channels):
            await channel.close(None)
        await self.pg.close()
        await self.nc.close()

    def watched(self) -> list[Watched]:
        """The processes whose CPU and memory are reported, by name."""
        assert self.stack.postgres is not None
        assert self.stack.postgres.proc is not None
        assert self.stack.nats is not None
        assert self.stack.nats.proc is not None
        services = [Watched(name, svc.pid) for name, svc in self.stack.services.items()]
        return [
            *sorted(services, key=lambda w: w.name),
            Watched("postgres", self.stack.postgres.proc.pid, tree=True),
            Watched("nats-server", self.stack.nats.proc.pid),
        ]

    async def create(
        self,
        request: job_service_pb2.CreateJobRequest,
        channel: int = 0,
        timeout_s: float = 30,
        user: str | None = None,
    ) -> jobs_pb2.Job:
        """CreateJob as the bench's user, or as ``user``."""
        stub = self.api[channel % len(self.api)]
        metadata = self.metadata if user is None else self.metadata_of(user)
        job: jobs_pb2.Job = await stub.CreateJob(request, metadata=metadata, timeout=timeout_s)
        return job

    def metadata_of(self, user: str) -> tuple[tuple[str, str], ...]:
        """A call's metadata as ``user`` (a token signed once per user)."""
        if user not in self._users:
            self._users[user] = _bearer(self.stack, user)
        return self._users[user]

    async def statuses(self, ids: list[uuid.UUID]) -> dict[str, int]:
        rows = await self.pg.fetch(
            "SELECT status, count(*) AS n FROM jobs WHERE id = ANY($1::uuid[]) GROUP BY status",
            ids,
        )
        return {r["status"]: r["n"] for r in rows}

    async def quiesce(self, timeout_s: float = 300.0) -> float:
        """Wait until nothing is in flight: every job finished, the outbox empty, and both
        JetStream consumers without pending or unacknowledged messages. Each phase starts
        on an idle system, not on the tail of the previous one. Returns the seconds waited."""
        started = time.monotonic()
        quiet_rounds = 0
        while quiet_rounds < 3:
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"the stack did not go idle within {timeout_s:g}s")
            busy = await self.pg.fetchval(
                # Outbox rows not yet due are no work in hand: a scheduled retry's job
                # is unfinished anyway, and a first step taken when offered keeps its
                # row a lease's length after it ran (jobkit.offers).
                "SELECT (SELECT count(*) FROM jobs WHERE status <> ALL($1::text[]))"
                " + (SELECT count(*) FROM outbox WHERE not_before <= now())",
                TERMINAL_STATUSES,
            )
            for stream, consumer in (
                (bus.STEPS_STREAM, bus.WORKER_CONSUMER),
                (bus.EXPRESS_STREAM, bus.WORKER_EXPRESS_CONSUMER),
                (bus.UPDATES_STREAM, bus.ORCHESTRATOR_CONSUMER),
            ):
                info = await self.js.consumer_info(stream, consumer)
                busy += (info.num_pending or 0) + (info.num_ack_pending or 0)
            quiet_rounds = quiet_rounds + 1 if busy == 0 else 0
            await asyncio.sleep(0.2)
        return time.monotonic() - started


def _bearer(stack: Stack, user: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {stack.token(user)}"),)
