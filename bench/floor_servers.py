"""The other end of the transport floors (``bench.floors``), each its own process as a
service is: a gRPC server whose one method answers at once, and a NATS responder that
answers every request at once. Both run on uvloop, as the services do, and do nothing
else, so what they cost a call is the transport's least.

``python -m bench.floor_servers grpc PORT`` or ``python -m bench.floor_servers nats URL``;
each prints ``ready`` once it serves.
"""

from __future__ import annotations

import asyncio
import sys

import grpc
import nats
import uvloop
from nats.aio.msg import Msg

GRPC_SERVICE = "floor.Floor"
GRPC_METHOD = f"/{GRPC_SERVICE}/Echo"
NATS_SUBJECT = "bench.floor.request"
#: About a CreateJob's answer (a Job message) and a result's answer.
GRPC_ANSWER = b"j" * 300
NATS_ANSWER = b"a" * 100


def _say_ready() -> None:
    sys.stdout.write("ready\n")
    sys.stdout.flush()


async def serve_grpc(port: int) -> None:
    async def echo(_request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return GRPC_ANSWER

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                GRPC_SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
            ),
        )
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    _say_ready()
    await server.wait_for_termination()


async def serve_nats(url: str) -> None:
    nc = await nats.connect(url, name="bench-floor-responder")

    async def answer(msg: Msg) -> None:
        await nc.publish(msg.reply, NATS_ANSWER)

    await nc.subscribe(NATS_SUBJECT, cb=answer)
    await nc.flush()
    _say_ready()
    await asyncio.Event().wait()


def main(argv: list[str]) -> None:
    kind, where = argv
    if kind == "grpc":
        uvloop.run(serve_grpc(int(where)))
    elif kind == "nats":
        uvloop.run(serve_nats(where))
    else:
        raise SystemExit(f"unknown floor server {kind!r}: grpc or nats")


if __name__ == "__main__":
    main(sys.argv[1:])
