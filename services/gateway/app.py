"""The gateway's HTTP side: a Starlette app whose API routes are the proto annotations,
plus the page, the OpenAPI document, health and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import grpc
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import jobtypes
from jobkit.logging import get_logger
from jobkit.metrics import GATEWAY_REQUEST_DURATION
from services.gateway import openapi
from services.gateway.config import Settings
from services.gateway.downloads import stream_download, stream_upload
from services.gateway.events import ACCESS_TOKEN, EventStreams, stream_events
from services.gateway.routes import Binding, bindings
from services.gateway.transcode import HttpError, build_request, dumps, error_from_call, to_json
from services.gateway.upstream import Upstreams, forwarded_metadata

log = get_logger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
#: The page runs no inline script and loads nothing from elsewhere: a result rendered
#: into it cannot run code, and it works offline.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    # The page's URL may carry ?token= on first load: never send it on as a referrer.
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _json(document: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        dumps(document), status_code=status, headers=headers, media_type="application/json"
    )


def _uploads() -> list[Binding]:
    return [b for b in bindings() if b.upload]


def _refuse_access_token(request: Request) -> None:
    """A watch token in the URL is for the events route; elsewhere only the header."""
    if ACCESS_TOKEN in request.query_params:
        raise HttpError.of(
            grpc.StatusCode.UNAUTHENTICATED,
            "access_token is accepted on the events route only; send Authorization: Bearer <token>",
        )


def _unary_endpoint(
    binding: Binding, upstreams: Upstreams, settings: Settings
) -> Callable[[Request], Awaitable[Response]]:
    call = upstreams.unary(binding)

    async def endpoint(request: Request) -> Response:
        _refuse_access_token(request)
        metadata = forwarded_metadata(request.headers)
        message = build_request(
            binding, request.path_params, request.query_params.multi_items(), await request.body()
        )
        try:
            reply = await call(message, metadata=metadata, timeout=settings.upstream_timeout_s)
        except grpc.aio.AioRpcError as error:
            raise error_from_call(error) from None
        return _json(to_json(reply), headers={"Cache-Control": "no-store"})

    return endpoint


def _stream_endpoint(
    binding: Binding, upstreams: Upstreams, settings: Settings, streams: EventStreams
) -> Callable[[Request], Awaitable[Response]]:
    call = upstreams.stream(binding)

    async def endpoint(request: Request) -> Response:
        # The credential is chosen by stream_events (a header, or a watch token in the URL).
        metadata = tuple(m for m in forwarded_metadata(request.headers) if m[0] != "authorization")
        return await stream_events(
            request,
            binding,
            call,
            metadata,
            streams,
            keepalive_s=settings.keepalive_s,
            send_timeout_s=settings.send_timeout_s,
        )

    return endpoint


def _download_endpoint(
    binding: Binding, upstreams: Upstreams, settings: Settings
) -> Callable[[Request], Awaitable[Response]]:
    call = upstreams.stream(binding)

    async def endpoint(request: Request) -> Response:
        _refuse_access_token(request)
        return await stream_download(request, binding, call, forwarded_metadata(request.headers))

    return endpoint


def _upload_endpoint(
    binding: Binding, upstreams: Upstreams, settings: Settings
) -> Callable[[Request], Awaitable[Response]]:
    call = upstreams.upload(binding)

    async def endpoint(request: Request) -> Response:
        _refuse_access_token(request)
        reply = await stream_upload(
            request, call, forwarded_metadata(request.headers), settings.upstream_timeout_s
        )
        return _json(to_json(reply), headers={"Cache-Control": "no-store"})

    return endpoint


def api_routes(upstreams: Upstreams, settings: Settings, streams: EventStreams) -> list[BaseRoute]:
    """One route per annotated RPC."""
    routes: list[BaseRoute] = []
    for binding in bindings():
        if binding.upload:
            make = _upload_endpoint
        elif binding.download:
            make = _download_endpoint
        elif binding.streaming:
            make = functools.partial(_stream_endpoint, streams=streams)
        else:
            make = _unary_endpoint
        routes.append(
            Route(
                binding.template,
                make(binding, upstreams, settings),
                methods=[binding.verb],
                name=binding.method.name,
            )
        )
    return routes


def create_app(settings: Settings, upstreams: Upstreams, streams: EventStreams) -> Starlette:
    """The gateway's app; ``streams``: its open event streams, which whoever serves it
    ends at shutdown (``EventStreams.close``)."""
    # The job types' example requests, read once: the page offers them, the OpenAPI
    # document shows them.
    example_bodies = {
        name: body for name in jobtypes.CATALOG if (body := jobtypes.example(name)) is not None
    }
    document = openapi.document(
        bindings(),
        job_types=jobtypes.CATALOG.specs(),
        examples={name: json.loads(body) for name, body in example_bodies.items()},
    )

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    # The job types with an example request, for a page that cannot list the catalogue
    # yet (no token): public, like the examples themselves.
    example_index = dumps({"types": list(example_bodies)})

    async def examples(request: Request) -> Response:
        return Response(example_index, media_type="application/json")

    async def example(request: Request) -> Response:
        body = example_bodies.get(request.path_params["name"])
        if body is None:
            raise HttpError.of(grpc.StatusCode.NOT_FOUND, "no such example")
        return Response(body, media_type="application/json")

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(document)

    async def healthz(request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if await upstreams.ready():
            return _json({"status": "ready"})
        return _json({"status": "upstream not serving"}, 503)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HttpError)
        return _json(error.body, error.status, error.headers)

    async def starlette_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        code = {
            404: grpc.StatusCode.NOT_FOUND,
            405: grpc.StatusCode.UNIMPLEMENTED,
        }.get(error.status_code, grpc.StatusCode.INVALID_ARGUMENT)
        shaped = HttpError.of(code, error.detail or "not found")
        return _json(shaped.body, error.status_code, dict(error.headers or {}))

    routes: list[BaseRoute] = [
        Route("/", page, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Route("/examples/index.json", examples, methods=["GET"]),
        Route("/examples/{name}.json", example, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *api_routes(upstreams, settings, streams),
    ]
    middleware = [
        # Outermost, so preflights and errors (413 included) carry the CORS headers.
        *_cors(settings.cors_origins),
        Middleware(ObserveRequests),
        Middleware(
            LimitBody,
            max_bytes=settings.max_body_bytes,
            by_path={upload.template: settings.max_upload_bytes for upload in _uploads()},
        ),
    ]
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HttpError: http_error, HTTPException: starlette_error},
    )


def _cors(origins: tuple[str, ...]) -> list[Middleware]:
    if not origins:
        return []
    anyone = "*" in origins
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=["*"] if anyone else list(origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["authorization", "content-type", "last-event-id", "traceparent"],
            expose_headers=["retry-after"],
            # Bearer tokens, not cookies; and never credentials for a wildcard origin.
            allow_credentials=not anyone,
            max_age=600,
        )
    ]


class _BodyTooLarge(Exception):
    pass


#: After answering 413, the rest of the body is still read and thrown away, up to this
#: much and for this long, before the connection is closed (see LimitBody).
DRAIN_MAX_BYTES = 16 * 1024 * 1024
DRAIN_MAX_S = 5.0


class LimitBody:
    """Answers 413 to a body larger than ``max_bytes``: at once when Content-Length says
    so, or as soon as a chunked body grows past it (nothing larger is ever buffered).

    The 413 goes out at once, with ``Connection: close``, but the connection is closed
    only once the client has finished sending (the rest of its body read and discarded,
    up to ``DRAIN_MAX_BYTES`` and ``DRAIN_MAX_S``), as RFC 9112 section 9.6 advises.
    Closing a socket with unread data in it makes the kernel answer with a reset; a
    client still writing its body then fails its write, and one that reads nothing
    while it writes (httpx, most HTTP libraries) never sees the 413 already sent:
    it gets a connection error instead."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, by_path: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        #: Other limits for some paths (an upload's body is a file).
        self.by_path = dict(by_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.by_path.get(scope["path"], self.max_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, receive, send, body_pending=True, limit=limit)
            return
        received = 0
        body_pending = True
        started = False

        async def limited_receive() -> Message:
            nonlocal received, body_pending
            message = await receive()
            body_pending = message["type"] == "http.request" and message.get("more_body", False)
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send, body_pending=body_pending, limit=limit)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, body_pending: bool, limit: int
    ) -> None:
        error = HttpError.of(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the request body is larger than {limit} bytes",
            [("body", f"must be at most {limit} bytes")],
        )

        async def send_then_drain(message: Message) -> None:
            if message["type"] != "http.response.body" or message.get("more_body", False):
                await send(message)
                return
            # The whole response is written now; the server closes the connection when
            # the response completes, so it completes only after the drain.
            await send({**message, "more_body": True})
            if body_pending:
                await _drain(receive)
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        await _json(error.body, 413, {"Connection": "close"})(scope, receive, send_then_drain)


async def _drain(receive: Receive) -> None:
    """Read and discard the rest of a request body, within the bounds."""
    discarded = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_MAX_S):
            while discarded <= DRAIN_MAX_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                discarded += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return


class ObserveRequests:
    """Per request: the security headers, one log line (route template, never the URL:
    query strings can hold tokens) and the latency histogram by route and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in _SECURITY_HEADERS:
                    headers.raw.append((name, value))
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            GATEWAY_REQUEST_DURATION.labels(template, scope["method"], str(status)).observe(elapsed)
            if scope["path"] not in _QUIET_PATHS:
                log.info(
                    "http_request",
                    method=scope["method"],
                    route=template,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
