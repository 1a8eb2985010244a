"""What the job-type modules share: reading checkpoints, loading the résumé, and asking
the model provider for prose with private prompts and partial output."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.ai_worker.cv import Profile, load_profile
from services.ai_worker.errors import PermanentStepError, RetryableStepError
from services.ai_worker.handlers import StepContext
from services.ai_worker.model_calls import ask_model
from services.ai_worker.privacy import Vault
from services.ai_worker.providers import ChatMessage, ChatProvider, ChatRequest


def profile_of(ctx: StepContext) -> Profile:
    """The profile the ``load_resume`` step checkpointed."""
    return Profile.from_dict(ctx.checkpoint("load_resume")["profile"])


async def load_resume(ctx: StepContext) -> dict[str, Any]:
    """The ``load_resume`` step: the input's résumé, normalised as ``cv_tailoring`` does."""
    try:
        profile = load_profile(ctx.input["resume"])
    except ValueError:
        raise PermanentStepError("INVALID_RESUME", "the résumé needs at least a name") from None
    return {"profile": profile.to_dict()}


class Prose:
    """One step's prose calls to the provider.

    Every prompt is masked with a vault of the job input's contact details (the model sees
    placeholders, the answer gets the details back), everything written so far in the
    step, across its calls, is reported as partial output while the model streams, and
    each call's tokens are recorded as the step's usage.
    """

    def __init__(self, provider: ChatProvider, ctx: StepContext) -> None:
        self._provider = provider
        self._ctx = ctx
        self._vault = Vault.for_input(ctx.input)

    async def ask(
        self,
        prompt_id: str,
        messages: tuple[ChatMessage, ...],
        offline: Callable[[], Awaitable[str]],
        max_tokens: int,
    ) -> str:
        """The model's answer to ``messages`` (with ``local``: ``offline()``'s text),
        stripped. An empty answer is a retryable failure."""
        request = ChatRequest(prompt_id, messages, offline, max_tokens=max_tokens)
        answer = (await ask_model(self._provider, request, self._vault, self._ctx)).strip()
        if not answer:
            raise RetryableStepError("WRITER_OUTPUT_REJECTED", f"{prompt_id}: empty answer")
        return answer


def system(task: str) -> ChatMessage:
    """The system message of the job types' prompts: ``task``, then the shared rules."""
    return ChatMessage(
        "system",
        f"{task} Use only the facts you are given: never claim a skill, tool, employer, "
        "title, date or figure that is not in them. Private details, if any, are given as "
        "placeholders (a kind and a number in square brackets): copy them exactly and never "
        "make one up. Answer with plain text only: no Markdown, no headings, no preamble.",
    )


def listing(items: list[str] | tuple[str, ...]) -> str:
    """``["a", "b", "c"]`` as "a, b and c"; "(none)" for nothing."""
    if not items:
        return "(none)"
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} and {items[-1]}"
