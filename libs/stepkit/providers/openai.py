"""The ``openai`` provider: any OpenAI-compatible chat-completions endpoint, streamed.

OpenAI itself, vLLM, Ollama, llama.cpp's server and LiteLLM all speak it: ``POST
{base}/chat/completions`` with ``stream: true`` answers with server-sent events, one JSON
chunk per ``data:`` line, the last one (with ``stream_options.include_usage``) carrying the
token counts, then ``data: [DONE]``.

Failures map onto the step errors (the only place HTTP errors are translated):

==========================================  ===================================================
429                                         retryable, ``retry_after_s`` from ``Retry-After``
408, 409, 5xx, network errors, a cut stream retryable
no first byte or no chunk for the stall     retryable timeout (``MODEL_TIMEOUT``)
timeout, or the call over its total timeout
other 4xx (a content-policy refusal, a bad  permanent: retrying sends the same request again
model name, bad credentials)
``finish_reason: content_filter``           permanent
==========================================  ===================================================

Error messages name the HTTP status and the provider's error code, never its message or
body (they may quote the prompt). The API key lives only in the client's default headers.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from datetime import UTC, datetime

import httpx

from jobkit.logging import get_logger
from stepkit.errors import PermanentStepError, RetryableStepError, StepError
from stepkit.providers.base import ChatRequest, StreamItem, TextChunk, Usage

log = get_logger(__name__)

#: A ``Retry-After`` longer than this is cut to it: the step's retry budget, not the
#: server, decides when a job gives up.
MAX_RETRY_AFTER_S = 600.0
# Server-reported codes we repeat in a step's message: identifiers only, never prose.
_SAFE_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_RETRYABLE_STATUS = frozenset({408, 409, 429})
_CHARS_PER_TOKEN = 4


def parse_retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (OpenAI's) or ``Retry-After`` (seconds or an
    HTTP date), capped at :data:`MAX_RETRY_AFTER_S`; ``None`` when absent or unreadable."""
    seconds: float | None = None
    millis = headers.get("retry-after-ms")
    value = headers.get("retry-after")
    try:
        if millis is not None:
            seconds = float(millis) / 1000
    except ValueError:
        seconds = None
    if seconds is None and value is not None:
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds is None or seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _error_code(body: bytes) -> str:
    """The provider's error code or type from an OpenAI-style error body, if it is a plain
    identifier (``content_policy_violation``); ``""`` otherwise."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return ""
    if not isinstance(error, dict):
        return ""
    for key in ("code", "type"):
        value = error.get(key)
        if isinstance(value, str) and _SAFE_CODE.fullmatch(value):
            return value
    return ""


def _status_error(status: int, code: str, headers: Mapping[str, str]) -> StepError:
    detail = f"HTTP {status}{f': {code}' if code else ''}"
    if status == 429:
        return RetryableStepError(
            "MODEL_RATE_LIMITED",
            f"the model provider is rate limiting us ({detail})",
            retry_after_s=parse_retry_after(headers),
        )
    if status >= 500 or status in _RETRYABLE_STATUS:
        return RetryableStepError(
            "MODEL_UNAVAILABLE",
            f"the model provider failed ({detail})",
            retry_after_s=parse_retry_after(headers),
        )
    if status in (401, 403):
        return PermanentStepError(
            "MODEL_AUTH_FAILED", f"the model provider refused our credentials ({detail})"
        )
    return PermanentStepError(
        "MODEL_REQUEST_REJECTED", f"the model provider refused the request ({detail})"
    )


async def _sse_data(lines: AsyncIterator[str]) -> AsyncGenerator[str, None]:
    """The ``data`` of each server-sent event (multi-line data joined by newlines)."""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
        # Comments (":" keep-alives), "event:", "id:" and "retry:" carry nothing we use.
    if data:
        yield "\n".join(data)


class OpenAIProvider:
    """Streams chat completions from an OpenAI-compatible server.

    ``request_timeout_s`` bounds a whole call; ``stall_timeout_s`` bounds the wait for the
    first byte and between two events of the stream. One pooled HTTP client per provider.
    """

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str,
        request_timeout_s: float = 120.0,
        stall_timeout_s: float = 30.0,
        connect_timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "text/event-stream"}
        if api_key:
            # Local servers (Ollama, vLLM without --api-key) need none.
            headers["Authorization"] = f"Bearer {api_key}"
        self._model = model
        self._request_timeout_s = request_timeout_s
        self._stall_timeout_s = stall_timeout_s
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            # The stall and total budgets are enforced around each read below; httpx's own
            # read timeout is a backstop for a read that somehow escapes them.
            timeout=httpx.Timeout(
                connect=connect_timeout_s,
                read=stall_timeout_s + 5,
                write=stall_timeout_s,
                pool=connect_timeout_s,
            ),
            transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"OpenAIProvider(model={self._model!r})"

    def _body(self, request: ChatRequest) -> dict[str, object]:
        body: dict[str, object] = {
            "model": self._model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return body

    def _timeout(self, deadline: float, what: str) -> RetryableStepError:
        if time.monotonic() >= deadline:
            message = f"the model took longer than {self._request_timeout_s:g}s"
        else:
            message = f"the model {what} for {self._stall_timeout_s:g}s"
        return RetryableStepError("MODEL_TIMEOUT", message)

    def _failed(self, request: ChatRequest, error: StepError, status: int = 0) -> StepError:
        log.warning(
            "model_call_failed",
            prompt_id=request.prompt_id,
            model=self._model,
            status=status,
            code=error.code,
            retryable=error.retryable,
        )
        return error

    async def stream(self, request: ChatRequest) -> AsyncGenerator[StreamItem, None]:
        """Send ``request`` and yield the answer as it streams in, then its usage."""
        deadline = time.monotonic() + self._request_timeout_s

        def budget() -> float:
            return max(0.0, min(self._stall_timeout_s, deadline - time.monotonic()))

        http_request = self._client.build_request(
            "POST", "chat/completions", json=self._body(request)
        )
        response: httpx.Response | None = None
        try:
            try:
                async with asyncio.timeout(budget()):
                    response = await self._client.send(http_request, stream=True)
                if response.status_code != 200:
                    async with asyncio.timeout(budget()):
                        body = await response.aread()
                    raise self._failed(
                        request,
                        _status_error(response.status_code, _error_code(body), response.headers),
                        response.status_code,
                    )
            except (TimeoutError, httpx.TimeoutException):
                raise self._failed(request, self._timeout(deadline, "did not answer")) from None
            except httpx.TransportError as error:
                raise self._failed(
                    request,
                    RetryableStepError(
                        "MODEL_UNAVAILABLE",
                        f"could not reach the model provider ({type(error).__name__})",
                    ),
                ) from None
            async for item in self._read(request, response, deadline, budget):
                yield item
        finally:
            if response is not None:
                # Unread, the connection is closed rather than pooled: the server sees the
                # client go away (a cancelled job stops the generation it was paying for).
                await response.aclose()

    async def _read(
        self,
        request: ChatRequest,
        response: httpx.Response,
        deadline: float,
        budget: Callable[[], float],
    ) -> AsyncGenerator[StreamItem, None]:
        events = _sse_data(response.aiter_lines())
        model = self._model
        usage: Usage | None = None
        produced = 0
        finish_reason: str | None = None
        done = False
        try:
            while not done:
                try:
                    async with asyncio.timeout(budget()):
                        data = await anext(events, None)
                except (TimeoutError, httpx.TimeoutException):
                    raise self._failed(request, self._timeout(deadline, "stalled")) from None
                except httpx.TransportError as error:
                    raise self._failed(
                        request,
                        RetryableStepError(
                            "MODEL_STREAM_BROKEN",
                            f"the model's stream broke off ({type(error).__name__})",
                        ),
                    ) from None
                if data is None:
                    break
                if data.strip() == "[DONE]":
                    done = True
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise self._failed(
                        request,
                        RetryableStepError(
                            "MODEL_BAD_STREAM", "the model sent an unreadable chunk"
                        ),
                    ) from None
                if not isinstance(chunk, dict):
                    continue
                if chunk.get("error"):
                    code = _error_code(json.dumps({"error": chunk["error"]}).encode())
                    raise self._failed(
                        request,
                        RetryableStepError(
                            "MODEL_STREAM_ERROR",
                            f"the model failed mid-answer{f' ({code})' if code else ''}",
                        ),
                    )
                model = str(chunk.get("model") or model)
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") or {}
                    text = delta.get("content")
                    if isinstance(text, str) and text:
                        produced += len(text)
                        yield TextChunk(text)
                    finish_reason = choice.get("finish_reason") or finish_reason
                counts = chunk.get("usage")
                if isinstance(counts, dict):
                    usage = Usage(
                        prompt_tokens=int(counts.get("prompt_tokens") or 0),
                        completion_tokens=int(counts.get("completion_tokens") or 0),
                        model=model,
                    )
        finally:
            await events.aclose()
        if finish_reason == "content_filter":
            raise self._failed(
                request,
                PermanentStepError(
                    "MODEL_CONTENT_FILTERED",
                    "the model provider withheld the answer (content filter)",
                ),
            )
        if not done and finish_reason is None:
            raise self._failed(
                request,
                RetryableStepError("MODEL_STREAM_BROKEN", "the model's stream ended mid-answer"),
            )
        if usage is None:
            # The server ignored include_usage: estimate rather than record nothing.
            prompt_chars = sum(len(m.content) for m in request.messages)
            usage = Usage(
                prompt_tokens=-(-prompt_chars // _CHARS_PER_TOKEN),
                completion_tokens=-(-produced // _CHARS_PER_TOKEN),
                model=model,
                estimated=True,
            )
        yield usage

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()
