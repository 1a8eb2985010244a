"""A stand-in for an OpenAI-compatible server, run as its own process by the tests.

``python -m tests.fake_openai --port N`` serves ``POST /v1/chat/completions`` in the real
wire format: with ``stream: true``, server-sent events of ``chat.completion.chunk`` objects,
a usage chunk when ``stream_options.include_usage`` asks for one, then ``data: [DONE]``.

Tests script it over HTTP:

- ``POST /_control/reset`` with ``{"scenarios": [...], "default": {...}}``: forget earlier
  requests and answer the next requests with these scenarios, in order; once they run out,
  every request gets the default scenario (without one, a short streamed reply).
- ``GET /_control/requests``: every completion request so far, with its headers, body and
  outcome (``completed``, or ``disconnected`` when the client went away mid-answer).

A scenario is a JSON object; every key is optional::

    {"status": 429, "headers": {"Retry-After": "7"}, "body": {"error": {...}}}  # an error
    {"chunks": ["Hel", "lo"], "usage": {"prompt_tokens": 3, "completion_tokens": 2},
     "chunk_delay_s": 0.05, "stall_after": 1, "stall_s": 60, "finish_reason": "stop"}

``usage: null`` leaves the usage chunk out; ``stall_after: n`` stops after n chunks and
waits ``stall_s`` (watching for the client to disconnect). ``echo_placeholders`` plays a
model that uses the private details it was given: the reply gets every placeholder
(``[EMAIL_1]``) of the prompt's user messages appended, written as given (``"exact"``),
in lower case (``"lower"``) or with spaces inside the brackets (``"spaced"``), and is
streamed in three-character chunks, so placeholders arrive split.

:func:`running` starts the process for a test and hands back a :class:`FakeServer` handle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from devstack import free_port

DEFAULT_REPLY = "An engineer who ships reliable, well-tested systems."
MODEL = "fake-model-1"


def streaming_reply(
    chars: int = 2, delay_s: float = 0.03, prompt_tokens: int = 120, completion_tokens: int = 30
) -> dict[str, Any]:
    """A scenario: DEFAULT_REPLY, ``chars`` characters every ``delay_s``, with that usage;
    each answer takes a moment, as a real model's does."""
    return {
        "chunks": [DEFAULT_REPLY[i : i + chars] for i in range(0, len(DEFAULT_REPLY), chars)],
        "chunk_delay_s": delay_s,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
    }


#: Two characters every 30 ms, 120 prompt and 30 completion tokens a call.
SLOW_MODEL = streaming_reply()
_PLACEHOLDER = re.compile(r"\[[A-Z]+(?:_[A-Z]+)*_\d+\]")


class FakeOpenAI:
    def __init__(self) -> None:
        self.scenarios: list[dict[str, Any]] = []
        self.default: dict[str, Any] = {}
        self.requests: list[dict[str, Any]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            body = await reader.readexactly(length) if length else b""
            await self.route(method, target, headers, body, reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
                await writer.wait_closed()

    async def route(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        if target == "/_control/health":
            await send_json(writer, 200, {"ok": True})
        elif target == "/_control/reset" and method == "POST":
            control = json.loads(body or b"{}")
            self.scenarios = list(control.get("scenarios", []))
            self.default = dict(control.get("default") or {})
            self.requests = []
            await send_json(writer, 200, {"ok": True})
        elif target == "/_control/requests":
            await send_json(writer, 200, {"requests": self.requests})
        elif target == "/v1/chat/completions" and method == "POST":
            await self.complete(headers, body, reader, writer)
        else:
            await send_json(writer, 404, {"error": {"message": "no such route", "code": None}})

    async def complete(
        self,
        headers: dict[str, str],
        body: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        request = json.loads(body)
        record: dict[str, Any] = {"headers": headers, "body": request, "outcome": "pending"}
        self.requests.append(record)
        scenario = self.scenarios.pop(0) if self.scenarios else dict(self.default)
        status = int(scenario.get("status", 200))
        if status != 200:
            await send_json(writer, status, scenario.get("body", {}), scenario.get("headers", {}))
            record["outcome"] = "completed"
            return
        prompt_words = sum(len(str(m.get("content", "")).split()) for m in request["messages"])
        chunks = scenario.get("chunks")
        if chunks is None:
            words = DEFAULT_REPLY.split(" ")
            chunks = [words[0], *(f" {w}" for w in words[1:])]
        if scenario.get("echo_placeholders"):
            chunks = _echo(chunks, request["messages"], str(scenario["echo_placeholders"]))
        usage = scenario.get(
            "usage", {"prompt_tokens": prompt_words, "completion_tokens": len(chunks)}
        )
        if not request.get("stream"):
            await send_json(writer, 200, _completion("".join(chunks), usage))
            record["outcome"] = "completed"
            return
        # Nothing more comes from a client once its request is in: EOF means it went away.
        gone = asyncio.ensure_future(reader.read(1))
        try:
            await self.stream(scenario, chunks, usage, request, writer, gone)
            record["outcome"] = "completed"
        except (ConnectionError, _Disconnected):
            record["outcome"] = "disconnected"
        finally:
            gone.cancel()

    async def stream(
        self,
        scenario: dict[str, Any],
        chunks: list[str],
        usage: dict[str, Any] | None,
        request: dict[str, Any],
        writer: asyncio.StreamWriter,
        gone: asyncio.Future[bytes],
    ) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()

        async def event(data: str) -> None:
            if gone.done():
                raise _Disconnected
            payload = f"data: {data}\n\n".encode()
            writer.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
            await writer.drain()

        async def pause(seconds: float) -> None:
            if seconds > 0:
                await asyncio.wait([gone], timeout=seconds)
            if gone.done():
                raise _Disconnected

        model = scenario.get("model", MODEL)
        await event(json.dumps(_chunk(model, {"role": "assistant", "content": ""})))
        stall_after = scenario.get("stall_after")
        for index, text in enumerate(chunks):
            if stall_after is not None and index == stall_after:
                await pause(float(scenario.get("stall_s", 3600)))
            await pause(float(scenario.get("chunk_delay_s", 0)))
            await event(json.dumps(_chunk(model, {"content": text})))
        if stall_after is not None and stall_after >= len(chunks):
            await pause(float(scenario.get("stall_s", 3600)))
        finish = scenario.get("finish_reason", "stop")
        await event(json.dumps(_chunk(model, {}, finish)))
        wants_usage = (request.get("stream_options") or {}).get("include_usage")
        if wants_usage and usage is not None:
            total = usage["prompt_tokens"] + usage["completion_tokens"]
            await event(
                json.dumps(
                    {
                        **_chunk(model, None),
                        "choices": [],
                        "usage": {**usage, "total_tokens": total},
                    }
                )
            )
        if scenario.get("done", True):
            await event("[DONE]")
        writer.write(b"0\r\n\r\n")
        await writer.drain()


class _Disconnected(Exception):
    pass


def _echo(chunks: list[str], messages: list[dict[str, Any]], style: str) -> list[str]:
    """``chunks`` with the user messages' placeholders appended, in ``style``, re-cut into
    three-character chunks."""
    prompt = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
    found = list(dict.fromkeys(_PLACEHOLDER.findall(prompt)))
    if style == "lower":
        found = [p.lower() for p in found]
    elif style == "spaced":
        found = [f"[ {p[1:-1]} ]" for p in found]
    text = "".join(chunks) + "".join(f" {p}" for p in found)
    return [text[i : i + 3] for i in range(0, len(text), 3)]


def _chunk(model: str, delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
    }


def _completion(text: str, usage: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": MODEL,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": usage,
    }


async def send_json(
    writer: asyncio.StreamWriter,
    status: int,
    payload: Any,
    headers: dict[str, str] | None = None,
) -> None:
    body = json.dumps(payload).encode()
    head = [f"HTTP/1.1 {status} Fake", "Content-Type: application/json"]
    head += [f"{name}: {value}" for name, value in (headers or {}).items()]
    head += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    writer.write("\r\n".join(head).encode() + body)
    await writer.drain()


class FakeServer:
    """The tests' handle on a running fake server."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def script(
        self, *scenarios: dict[str, Any], default: dict[str, Any] | None = None
    ) -> None:
        """Forget earlier requests; answer the next ones with ``scenarios``, in order, and
        then every one with ``default``."""
        control = {"scenarios": scenarios, "default": default or {}}
        async with httpx.AsyncClient() as client:
            reply = await client.post(f"{self.url}/_control/reset", json=control)
            reply.raise_for_status()

    async def requests(self) -> list[dict[str, Any]]:
        """The completion requests since the last :meth:`script`."""
        async with httpx.AsyncClient() as client:
            reply = await client.get(f"{self.url}/_control/requests")
            found: list[dict[str, Any]] = reply.json()["requests"]
            return found


@contextlib.contextmanager
def running(timeout_s: float = 15.0) -> Iterator[FakeServer]:
    """Start the fake server as a process on a free port; stop it on exit."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_openai", "--port", str(port)],
        cwd=Path(__file__).resolve().parents[1],
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                httpx.get(f"{url}/_control/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the fake OpenAI server did not start") from None
                time.sleep(0.05)
        yield FakeServer(url)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def main(port: int) -> None:
    fake = FakeOpenAI()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
