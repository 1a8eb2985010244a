"""Model providers behind one streaming chat-completion interface (see ``base``).

``AI_PROVIDER=local`` (the default) answers from templates, offline; ``AI_PROVIDER=openai``
talks to any OpenAI-compatible endpoint (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``,
``AI_MODEL``).
"""

from __future__ import annotations

from stepkit.providers.base import (
    ChatMessage,
    ChatProvider,
    ChatRequest,
    Completion,
    StreamItem,
    TextChunk,
    Usage,
    complete,
)
from stepkit.providers.local import LocalProvider
from stepkit.providers.openai import OpenAIProvider

__all__ = [
    "ChatMessage",
    "ChatProvider",
    "ChatRequest",
    "Completion",
    "LocalProvider",
    "OpenAIProvider",
    "StreamItem",
    "TextChunk",
    "Usage",
    "complete",
]
