"""``GET /v1/jobs/{job_id}/events``: one WatchJob call as a Server-Sent Events stream.

The guarantee of WatchJob (every event once, in order, resumable from any sequence) is
carried into the browser unchanged: each message's ``id:`` is the event's sequence, so an
``EventSource`` that reconnects sends ``Last-Event-ID`` and gets exactly what it missed,
whichever gateway replica it reaches. After the terminal event an ``end`` message closes
the stream; a job already over with nothing left to send answers ``204``, which stops
``EventSource`` from reconnecting.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator

import grpc
from google.protobuf.message import Message
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from jobkit.gen.jobs.v1 import jobs_pb2
from jobkit.logging import get_logger
from jobkit.metrics import GATEWAY_STREAMS
from jobkit.rpc import WATCH_LIVE_HEADER
from jobkit.watch_tokens import is_watch_token
from services.gateway.routes import Binding
from services.gateway.transcode import HttpError, build_request, dumps, error_from_call, to_json
from services.gateway.upstream import carriable

log = get_logger(__name__)

ACCESS_TOKEN = "access_token"  # noqa: S105 - a parameter name
_TERMINAL = frozenset(
    {
        jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED,
        jobs_pb2.JOB_EVENT_TYPE_FAILED,
        jobs_pb2.JOB_EVENT_TYPE_CANCELLED,
    }
)
#: The longest the response headers wait for the notifier to say what the stream is: its
#: first event, its end (a finished job with nothing left: 204), or that it is live with
#: nothing to replay (``WATCH_LIVE_HEADER``). The notifier says one of them as soon as it
#: has read the job's first page, so this bounds only a slow notifier, or one of a release
#: that did not send the live header (a quiet running job's stream then opens after this
#: long).
OPEN_WAIT_S = 5.0
#: Lines end in LF, as in the SSE spec's own examples: a client splitting the stream on
#: blank lines ("\n\n") reads it as it is (sse_starlette's default is CRLF).
SEP = "\n"
#: One message of an event stream, its lines ending in ``SEP`` (a message object keeps
#: its own separator, whatever the response's).
sse = functools.partial(ServerSentEvent, sep=SEP)
#: Sent with the first message: an EventSource whose connection drops (a gateway
#: restarting) tries again after this many milliseconds instead of its default 3 s.
RECONNECT_MS = 1000

#: The bound streaming RPC (WatchJob), and one call of it.
StreamCall = grpc.aio.UnaryStreamMultiCallable[Message, Message]
Upstream = grpc.aio.UnaryStreamCall[Message, Message]


def credentials(request: Request) -> tuple[tuple[str, str], ...]:
    """The bearer credential for the upstream: the Authorization header, or else
    ``?access_token=``, which must be a watch token. A user's own JWT never travels in a
    URL: it would end up in proxy logs and browser history."""
    header = request.headers.get("authorization")
    if header is not None:
        return (("authorization", header),)
    token = request.query_params.get(ACCESS_TOKEN)
    if token is None:
        raise HttpError.of(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid credentials")
    if not carriable(token) or not is_watch_token(token):
        raise HttpError.of(
            grpc.StatusCode.UNAUTHENTICATED,
            "access_token takes a watch token (POST /v1/jobs/{job_id}:watchToken), "
            "never a user's token",
        )
    return (("authorization", f"Bearer {token}"),)


def resume_point(request: Request) -> str | None:
    """``Last-Event-ID`` (an EventSource reconnecting) overrides ``after_sequence``."""
    last_event_id = request.headers.get("last-event-id")
    if last_event_id is None or not last_event_id.strip():
        return None
    if not last_event_id.strip().isdigit():
        raise HttpError.of(
            grpc.StatusCode.INVALID_ARGUMENT,
            "Last-Event-ID must be an event sequence",
            [("Last-Event-ID", "must be a whole number")],
        )
    return last_event_id.strip()


async def stream_events(
    request: Request,
    binding: Binding,
    call: StreamCall,
    metadata: tuple[tuple[str, str], ...],
    *,
    keepalive_s: float,
    send_timeout_s: float,
) -> Response:
    metadata = credentials(request) + metadata
    query = [(k, v) for k, v in request.query_params.multi_items()]
    resume = resume_point(request)
    if resume is not None:
        query = [(k, v) for k, v in query if k not in ("after_sequence", "afterSequence")]
        query.append(("after_sequence", resume))
    message = build_request(
        binding, request.path_params, query, b"", reserved=frozenset({ACCESS_TOKEN})
    )
    upstream = call(message, metadata=metadata)
    first = asyncio.ensure_future(_next_event(upstream))
    try:
        async with asyncio.timeout(OPEN_WAIT_S):
            headers = await upstream.initial_metadata()
            if not any(key == WATCH_LIVE_HEADER for key, _ in headers or ()):
                # The first event or the end came with the headers, or follows them.
                await asyncio.shield(first)
    except TimeoutError:
        pass  # open the stream now; the events follow when they come
    except grpc.aio.AioRpcError as error:
        _abandon(upstream, first)
        raise error_from_call(error) from None
    except BaseException:
        _abandon(upstream, first)
        raise
    if first.done() and first.result() is None:
        return Response(status_code=204, headers={"Cache-Control": "no-cache"})
    return _EventStream(upstream, first, keepalive_s=keepalive_s, send_timeout_s=send_timeout_s)


async def _next_event(upstream: Upstream) -> jobs_pb2.JobEvent | None:
    """The stream's next event, or ``None`` once it has ended (``read()`` answers grpc's
    ``EOF`` then, a sentinel its type stubs do not declare)."""
    item = await upstream.read()
    if isinstance(item, jobs_pb2.JobEvent):
        return item
    if isinstance(item, Message):
        raise TypeError(f"an event stream of {type(item).__name__}, not JobEvent")
    return None


def _abandon(upstream: Upstream, first: asyncio.Future[jobs_pb2.JobEvent | None]) -> None:
    """End the WatchJob call, and the pending first read with it."""
    upstream.cancel()
    first.cancel()


class _EventStream(EventSourceResponse):
    """An SSE response that owns its upstream call for as long as it is open, and ends it
    however the response ends: the job over, the browser gone, even before the message
    generator started (whose own clean-up would then never run)."""

    def __init__(
        self,
        upstream: Upstream,
        first: asyncio.Future[jobs_pb2.JobEvent | None],
        *,
        keepalive_s: float,
        send_timeout_s: float,
    ) -> None:
        super().__init__(
            _messages(upstream, first),
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            ping=keepalive_s,
            ping_message_factory=lambda: sse(comment="keepalive"),
            sep=SEP,
            # A client that reads nothing for this long is dropped, so it never holds its
            # upstream stream (and the notifier's buffer) forever; it resumes from its last id.
            send_timeout=send_timeout_s,
        )
        self._upstream = upstream
        self._first = first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        GATEWAY_STREAMS.inc()
        try:
            await super().__call__(scope, receive, send)
        finally:
            _abandon(self._upstream, self._first)
            GATEWAY_STREAMS.dec()


async def _messages(
    upstream: Upstream, first: asyncio.Future[jobs_pb2.JobEvent | None]
) -> AsyncIterator[ServerSentEvent]:
    retry: int | None = RECONNECT_MS
    try:
        event = await first
        while event is not None:
            yield sse(dumps(to_json(event)), id=str(event.sequence), retry=retry)
            retry = None
            if event.type in _TERMINAL:
                yield sse(dumps({"sequence": event.sequence}), event="end")
                return
            event = await _next_event(upstream)
        # The upstream ended early (a notifier replica going away): end the response;
        # the EventSource reconnects with Last-Event-ID and resumes elsewhere.
    except grpc.aio.AioRpcError as error:
        log.info("event_stream_upstream_ended", code=error.code().name)
