"""Files through the gateway, streamed both ways, never held whole.

``GET /v1/jobs/{job_id}/artifacts/{name}``: one DownloadArtifact call as a streamed HTTP
body.

The stream's first message is read before the response starts, so a missing job or
artifact (404), a bad request (400) or an unreachable store (503) is an HTTP status like any
other error. After it the bytes flow through as they come, never held whole, with the
artifact's Content-Type, its Content-Length and its sha256 as the ETag. A stream that breaks
later (the stored bytes no longer match their sha256: DATA_LOSS) cuts the connection short
of Content-Length, so no client can take part of a file for the whole of it.

``POST /v1/uploads``: the request body, as it arrives, is one CreateUpload call's stream
of pieces (its Content-Type the first's); the answer is the Upload as JSON. The body's size
is bounded by ``GATEWAY_MAX_UPLOAD_BYTES`` (413) before job_api's own limit.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import grpc
from google.api import httpbody_pb2
from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from jobkit.gen.jobs.v1 import job_service_pb2, jobs_pb2
from jobkit.logging import get_logger
from services.gateway.routes import Binding
from services.gateway.transcode import HttpError, build_request, error_from_call

log = get_logger(__name__)

#: The bound streaming RPCs (DownloadArtifact, CreateUpload).
StreamCall = grpc.aio.UnaryStreamMultiCallable[Message, Message]
UploadCall = grpc.aio.StreamUnaryMultiCallable[Message, Message]

#: What may appear in a Content-Disposition filename as is; anything else becomes ``_``.
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


async def stream_download(
    request: Request,
    binding: Binding,
    call: StreamCall,
    metadata: tuple[tuple[str, str], ...],
) -> Response:
    message = build_request(binding, request.path_params, request.query_params.multi_items(), b"")
    upstream = call(message, metadata=metadata)
    try:
        first = await anext(aiter(upstream))
    except grpc.aio.AioRpcError as error:
        raise error_from_call(error) from None
    except StopAsyncIteration:
        raise HttpError.of(grpc.StatusCode.INTERNAL, "the download ended before it began") from None
    assert isinstance(first, httpbody_pb2.HttpBody)
    artifact = jobs_pb2.Artifact()
    if not first.extensions or not first.extensions[0].Unpack(artifact):
        upstream.cancel()
        raise HttpError.of(grpc.StatusCode.INTERNAL, "the download named no artifact")
    filename = _UNSAFE_FILENAME.sub("_", artifact.name) or "artifact"
    headers = {
        "Content-Length": str(artifact.size),
        "ETag": f'"{artifact.sha256}"',
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
    }

    async def body() -> AsyncIterator[bytes]:
        try:
            if first.data:
                yield first.data
            async for piece in upstream:
                assert isinstance(piece, httpbody_pb2.HttpBody)
                yield piece.data
        except grpc.aio.AioRpcError as error:
            # The headers are out: all that is left is to cut the body short.
            log.warning("download_broken", code=error.code().name)
            raise
        finally:
            upstream.cancel()

    return StreamingResponse(body(), headers=headers, media_type=artifact.content_type)


#: The pieces of an upload sent upstream: at most this much each.
UPLOAD_PIECE = 256 * 1024


async def stream_upload(
    request: Request,
    call: UploadCall,
    metadata: tuple[tuple[str, str], ...],
    timeout_s: float,
) -> Message:
    content_type = request.headers.get("content-type", "").split(";")[0].strip()

    async def pieces() -> AsyncIterator[job_service_pb2.CreateUploadRequest]:
        first = True
        async for received in request.stream():
            for start in range(0, len(received), UPLOAD_PIECE):
                piece = received[start : start + UPLOAD_PIECE]
                yield job_service_pb2.CreateUploadRequest(
                    content_type=content_type if first else "", data=piece
                )
                first = False
        if first:  # an empty body: still one message, for its content type
            yield job_service_pb2.CreateUploadRequest(content_type=content_type)

    try:
        reply: Message = await call(pieces(), metadata=metadata, timeout=timeout_s)
    except grpc.aio.AioRpcError as error:
        raise error_from_call(error) from None
    return reply
