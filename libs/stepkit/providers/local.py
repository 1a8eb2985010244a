"""The ``local`` provider (the default): no model, no network, the same answer every time.

It answers each request with the request's ``offline`` text (the templates of the job's
text engine), streamed word by word, and counts whitespace-separated words as tokens so
usage is recorded the same way as for a real model.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator

from stepkit.providers.base import ChatRequest, StreamItem, TextChunk, Usage

#: The model name recorded in usage.
LOCAL_MODEL = "local-templates"

# Each piece is a run of spaces followed by a word (the first may have no spaces), so the
# pieces join back to exactly the text.
_PIECES = re.compile(r"\s*\S+|\s+")


def _words(text: str) -> int:
    return len(text.split())


class LocalProvider:
    """Deterministic and offline: the system works with no model at all."""

    name = "local"

    async def stream(self, request: ChatRequest) -> AsyncGenerator[StreamItem, None]:
        """The request's offline text in word-sized chunks, then its word counts."""
        text = await request.offline()
        pieces = _PIECES.findall(text)
        for piece in pieces:
            yield TextChunk(piece)
        yield Usage(
            prompt_tokens=sum(_words(message.content) for message in request.messages),
            completion_tokens=_words(text),
            model=LOCAL_MODEL,
        )

    async def aclose(self) -> None:
        """Nothing to release."""
