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
of pieces (its Content-Type the first's); the answer is the Upload as JSON. A
``multipart/form-data`` body works too (an HTML form): its part named ``file`` is the file,
parsed as it streams, with that part's Content-Type. The body's size is bounded by
``GATEWAY_MAX_UPLOAD_BYTES`` (413) before job_api's own limit.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import grpc
from google.api import httpbody_pb2
from google.protobuf.message import Message
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from jobkit.convert import DEFAULT_CONTENT_TYPE, upload_requests
from jobkit.gen.jobs.v1 import jobs_pb2
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


#: The form field an HTML upload form names its file.
FILE_FIELD = b"file"


async def stream_upload(
    request: Request,
    call: UploadCall,
    metadata: tuple[tuple[str, str], ...],
    timeout_s: float,
) -> Message:
    media_type, options = parse_options_header(request.headers.get("content-type", ""))
    content_type = media_type.decode("latin-1")
    body: AsyncIterator[bytes] = request.stream()
    if media_type == b"multipart/form-data":
        content_type, body = await _file_of_form(body, options.get(b"boundary", b""))

    try:
        requests = upload_requests(body, content_type)
        reply: Message = await call(requests, metadata=metadata, timeout=timeout_s)
    except grpc.aio.AioRpcError as error:
        raise error_from_call(error) from None
    return reply


async def _file_of_form(
    body: AsyncIterator[bytes], boundary: bytes
) -> tuple[str, AsyncIterator[bytes]]:
    """The content type and the bytes of a form's ``file`` part. The body is read up to the
    part's first bytes before anything goes upstream, so a form without one is refused
    and nothing is stored."""
    if not boundary:
        raise HttpError.of(grpc.StatusCode.INVALID_ARGUMENT, "a multipart body needs its boundary")
    part = _FilePart(boundary)
    pieces = part.pieces(body)
    head = await anext(pieces, None)
    if not part.found:
        raise HttpError.of(
            grpc.StatusCode.INVALID_ARGUMENT,
            "a multipart upload needs a part named file",
            [("file", "is missing")],
        )

    async def whole() -> AsyncIterator[bytes]:
        if head is not None:
            yield head
        async for piece in pieces:
            yield piece

    return part.content_type or DEFAULT_CONTENT_TYPE, whole()


class _FilePart:
    """The bytes of the part named ``file`` of a multipart body, as the body streams in
    (python-multipart's push parser; the other parts are skipped)."""

    def __init__(self, boundary: bytes) -> None:
        self.found = False
        self.content_type = ""
        self._in_file = False
        self._header = b""
        self._headers: dict[bytes, bytes] = {}
        self._ready: list[bytes] = []
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._data,
                "on_part_end": self._end,
            },
        )

    async def pieces(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for received in body:
            self._parser.write(received)
            ready, self._ready = self._ready, []
            for piece in ready:
                yield piece
        self._parser.finalize()

    def _begin(self) -> None:
        self._headers = {}
        self._in_file = False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header = data[start:end].lower()
        self._headers[self._header] = b""

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._headers[self._header] += data[start:end]

    def _headers_finished(self) -> None:
        _, disposition = parse_options_header(self._headers.get(b"content-disposition", b""))
        if disposition.get(b"name") == FILE_FIELD and not self.found:
            self.found = self._in_file = True
            part_type, _ = parse_options_header(self._headers.get(b"content-type", b""))
            self.content_type = part_type.decode("latin-1")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._ready.append(bytes(data[start:end]))

    def _end(self) -> None:
        self._in_file = False
