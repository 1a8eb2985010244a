"""The model-provider seam: one streaming chat-completion call, whatever answers it.

A step builds a :class:`ChatRequest` (messages plus a stable ``prompt_id``) and reads the
provider's :meth:`ChatProvider.stream`: text chunks as the model writes them, then exactly
one :class:`Usage`. Failures arrive as the step errors of ``stepkit.errors``
(retryable or permanent), so a handler need not know which provider it talks to.

Cancelling the task that reads a stream aborts the call (for a remote model: the HTTP
request, connection and all). Read streams with :func:`complete`, or inside
``contextlib.aclosing`` when stopping early, so an abandoned stream is closed at once rather
than when it is garbage-collected.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from jobkit.logging import get_logger

log = get_logger(__name__)

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class TextChunk:
    """Part of the model's answer, in order; the answer is the chunks joined."""

    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    """What one call cost: tokens in and out, and the model that answered.

    ``estimated`` is true when the server did not report usage and the counts are a
    characters-per-token estimate.
    """

    prompt_tokens: int
    completion_tokens: int
    model: str
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


StreamItem = TextChunk | Usage


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat-completion call.

    ``prompt_id`` names the prompt and its version (``"cv_summary@1"``): it is what logs
    and metrics say instead of the prompt, which is never logged. ``offline`` is the answer
    of the deterministic ``local`` provider for this request: the template text the step
    would produce with no model at all.
    """

    prompt_id: str
    messages: tuple[ChatMessage, ...]
    offline: Callable[[], Awaitable[str]]
    max_tokens: int | None = None
    temperature: float | None = None


class ChatProvider(Protocol):
    """A chat-completion backend. ``name`` is the ``AI_PROVIDER`` value that selects it."""

    name: str

    def stream(self, request: ChatRequest) -> AsyncGenerator[StreamItem, None]:
        """The answer as :class:`TextChunk` items, then one :class:`Usage`.

        Raises ``RetryableStepError`` (timeouts, rate limits with their ``retry_after_s``,
        server errors, network failures) or ``PermanentStepError`` (a request the model
        refuses, bad credentials).
        """
        ...

    async def aclose(self) -> None:
        """Release connections; the provider is not used afterwards."""
        ...


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    usage: Usage


async def complete(
    provider: ChatProvider,
    request: ChatRequest,
    on_chunk: Callable[[str], Awaitable[None]] | None = None,
) -> Completion:
    """Run ``request`` to the end: the whole answer and its usage. ``on_chunk`` sees each
    chunk as it arrives (for partial output)."""
    parts: list[str] = []
    usage: Usage | None = None
    started = time.monotonic()
    async with contextlib.aclosing(provider.stream(request)) as items:
        async for item in items:
            if isinstance(item, Usage):
                usage = item
            else:
                parts.append(item.text)
                if on_chunk is not None:
                    await on_chunk(item.text)
    if usage is None:
        raise RuntimeError(f"provider {provider.name} ended a stream without usage")
    # Counts and names only: prompts and answers never reach a log.
    log.info(
        "model_call_finished",
        provider=provider.name,
        prompt_id=request.prompt_id,
        model=usage.model,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        usage_estimated=usage.estimated,
        duration_ms=round((time.monotonic() - started) * 1000),
    )
    return Completion("".join(parts), usage)
