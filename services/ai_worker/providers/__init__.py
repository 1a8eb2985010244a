"""Model providers behind one streaming chat-completion interface (see ``base``).

``AI_PROVIDER=local`` (the default) answers from templates, offline; ``AI_PROVIDER=openai``
talks to any OpenAI-compatible endpoint (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``,
``AI_MODEL``).
"""

from __future__ import annotations

from services.ai_worker.config import Settings
from services.ai_worker.providers.base import (
    ChatMessage,
    ChatProvider,
    ChatRequest,
    Completion,
    StreamItem,
    TextChunk,
    Usage,
    complete,
)
from services.ai_worker.providers.local import LocalProvider
from services.ai_worker.providers.openai import OpenAIProvider


def provider_for(settings: Settings) -> ChatProvider:
    """The provider ``AI_PROVIDER`` names, configured from the worker's settings."""
    if settings.ai_provider == "openai":
        return OpenAIProvider(
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            model=settings.ai_model,
            request_timeout_s=settings.ai_request_timeout_s,
            stall_timeout_s=settings.ai_stall_timeout_s,
        )
    return LocalProvider()


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
    "provider_for",
]
