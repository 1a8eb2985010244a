"""The bench's transport floors (bench/floors.py, bench/floor_servers.py): each measures
calls between real processes, and counts the CPU of every process it names."""

from __future__ import annotations

import math

import pytest

from bench import floors
from bench.procs import Watched
from devstack.servers import NatsServer, free_port


async def test_grpc_calls_reach_the_floor_server_and_count_its_cpu() -> None:
    port = free_port()
    async with floors.floor_server("grpc", str(port)) as server:
        alone = await floors.grpc_calls(port, 8, 0.5, [])
        counted = await floors.grpc_calls(port, 8, 0.5, [server])
    assert alone.per_s > 100
    assert counted.per_s > 100
    assert alone.p50_ms > 0
    assert math.isfinite(alone.cpu_ms)
    # The server does half the work of a call: counted, it shows.
    assert counted.cpu_ms > 1.2 * alone.cpu_ms


async def test_nats_requests_are_answered_by_the_responder_and_count_nats_server(
    nats_server: NatsServer,
) -> None:
    assert nats_server.proc is not None
    server = Watched("nats-server", nats_server.proc.pid)
    async with floors.floor_server("nats", nats_server.url) as responder:
        alone = await floors.nats_requests(nats_server.url, 8, 0.5, [])
        counted = await floors.nats_requests(nats_server.url, 8, 0.5, [responder, server])
    assert alone.per_s > 500
    assert counted.per_s > 500
    assert counted.cpu_ms > 1.2 * alone.cpu_ms


async def test_a_floor_server_of_an_unknown_kind_does_not_start() -> None:
    started = floors.floor_server("carrier-pigeon", "nowhere")
    with pytest.raises(RuntimeError, match="did not start"):
        await started.__aenter__()
