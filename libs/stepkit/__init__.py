"""What a step handler is written with: its context, its errors, and prose from a model.

``jobtypes/<name>/steps.py`` imports this and nothing of ai_worker, which runs the
handlers: a step reads its input and earlier checkpoints from a :class:`StepContext`,
reports progress through it, asks a model through :class:`Prose` (private prompts,
streamed partial output, usage), and fails by raising a :class:`StepError`.
"""

from __future__ import annotations

from stepkit.context import ChildJob, Handler, StepContext
from stepkit.errors import InputRequested, PermanentStepError, RetryableStepError, StepError
from stepkit.prose import Prose, listing, system
from stepkit.providers import ChatMessage, ChatProvider

__all__ = [
    "ChatMessage",
    "ChatProvider",
    "ChildJob",
    "Handler",
    "InputRequested",
    "PermanentStepError",
    "Prose",
    "RetryableStepError",
    "StepContext",
    "StepError",
    "listing",
    "system",
]
