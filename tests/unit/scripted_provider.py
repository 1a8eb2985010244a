"""An in-process ``ChatProvider`` that answers from a script and records every request."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from stepkit.providers import ChatRequest, StreamItem, TextChunk, Usage


class ScriptedProvider:
    """Answers each request with ``reply(request)``, in three-character chunks."""

    name = "scripted"

    def __init__(self, reply: Callable[[ChatRequest], str]) -> None:
        self.reply = reply
        self.requests: list[ChatRequest] = []

    async def stream(self, request: ChatRequest) -> AsyncGenerator[StreamItem, None]:
        self.requests.append(request)
        text = self.reply(request)
        for start in range(0, len(text), 3):
            yield TextChunk(text[start : start + 3])
        yield Usage(prompt_tokens=10, completion_tokens=5, model="scripted-1")

    async def aclose(self) -> None:
        """Nothing to release."""

    def prompts(self) -> str:
        """Every message sent, as one text."""
        return "\n".join(m.content for r in self.requests for m in r.messages)
