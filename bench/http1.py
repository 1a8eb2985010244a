"""A deliberately small HTTP/1.1 client for the gateway and artifact phases: keep-alive
requests one after another on one connection, chunked or sized bodies (whole or streamed),
and a Server-Sent Events parser.

Why not httpx: thousands of open event streams through a general-purpose client cost the
load generator more CPU than the gateway under test would. This is ``asyncio`` streams and
a few byte operations per message, nothing else; it speaks only what the gateway answers
(``Content-Length`` or ``Transfer-Encoding: chunked``, no compression, no redirects).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

#: Longest status or header line we accept (the gateway's are far shorter).
MAX_LINE = 64 * 1024


class ProtocolError(Exception):
    """The server's answer was not HTTP/1.1 as this client understands it."""


@dataclass(frozen=True, slots=True)
class Head:
    status: int
    #: Header names lower-cased; a repeated header keeps its last value.
    headers: dict[str, str]

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    @property
    def length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None and value.isdigit() else None


@dataclass
class Connection:
    """One TCP connection to the gateway; requests go one at a time."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    host: str

    @classmethod
    async def open(cls, base_url: str) -> Connection:
        url = urlsplit(base_url)
        if url.hostname is None or url.port is None:
            raise ValueError(f"need http://host:port, got {base_url!r}")
        reader, writer = await asyncio.open_connection(url.hostname, url.port, limit=MAX_LINE)
        return cls(reader, writer, f"{url.hostname}:{url.port}")

    def close(self) -> None:
        self.writer.close()

    async def send(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes = b""
    ) -> None:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await self.writer.drain()

    async def head(self) -> Head:
        status_line = await self.reader.readline()
        if not status_line:
            raise ProtocolError("connection closed before a response")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {status_line[:80]!r}")
        headers: dict[str, str] = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise ProtocolError("connection closed inside the headers")
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return Head(int(parts[1]), headers)

    async def body(self, head: Head) -> bytes:
        """The whole body of a sized or chunked response (204 and 304 have none)."""
        if head.status in (204, 304):
            return b""
        if head.chunked:
            return b"".join([chunk async for chunk, _ in self.chunks()])
        length = head.length
        if length is None:
            return await self.reader.read()  # until the server closes
        return await self.reader.readexactly(length)

    async def sized(self, head: Head, piece: int = 256 * 1024) -> AsyncIterator[bytes]:
        """A ``Content-Length`` body, as it arrives, at most ``piece`` bytes at a time."""
        left = head.length or 0
        while left:
            data = await self.reader.read(min(piece, left))
            if not data:
                raise ProtocolError("connection closed inside the body")
            left -= len(data)
            yield data

    async def chunks(self) -> AsyncIterator[tuple[bytes, float]]:
        """A chunked body, chunk by chunk, each with the wall-clock time (``time.time()``)
        at which this task got it: what an application reading the stream would see."""
        reader = self.reader
        while True:
            size_line = await reader.readline()
            if not size_line:
                raise ProtocolError("connection closed inside a chunked body")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            data = await reader.readexactly(size + 2)
            yield data[:-2], time.time()

    async def request(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes = b""
    ) -> tuple[Head, bytes]:
        await self.send(method, target, headers, body)
        head = await self.head()
        return head, await self.body(head)


@dataclass(slots=True)
class SseMessage:
    id: str | None
    event: str | None
    data: str
    #: ``time.time()`` when the chunk that completed it was read.
    received: float


@dataclass
class SseParser:
    """Bytes of a ``text/event-stream`` in, complete messages out, by the WHATWG rules that
    matter here: ``field: value`` lines, a blank line ends a message, ``:`` comments (the
    keepalives) are skipped, ``data`` lines are joined with a newline, the last ``id``
    sticks. Lines end in CRLF or LF (the gateway sends LF; a bare CR is not handled)."""

    _buffer: bytes = b""
    _id: str | None = None
    _event: str | None = None
    _data: list[str] = field(default_factory=list)

    def feed(self, chunk: bytes, received: float) -> list[SseMessage]:
        self._buffer += chunk
        messages: list[SseMessage] = []
        while (end := self._buffer.find(b"\n")) >= 0:
            line = self._buffer[:end].removesuffix(b"\r")
            self._buffer = self._buffer[end + 1 :]
            if not line:
                if self._data or self._event is not None:
                    messages.append(
                        SseMessage(self._id, self._event, "\n".join(self._data), received)
                    )
                self._event = None
                self._data = []
            elif not line.startswith(b":"):
                name, _, value = line.decode("utf-8").partition(":")
                value = value.removeprefix(" ")
                if name == "data":
                    self._data.append(value)
                elif name == "id":
                    self._id = value
                elif name == "event":
                    self._event = value
        return messages
