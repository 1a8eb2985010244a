"""Prose from a model, the one way a step asks for it.

A :class:`Prose` holds a step's provider, its :class:`~stepkit.privacy.Vault` and (inside a
worker) its context. Each call masks the prompt with the vault (the model sees
placeholders, the answer gets the details back), streams everything the step has written
so far, across its calls, to watchers as the step's partial output, and records the call's
tokens as the step's usage.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from stepkit.context import StepContext
from stepkit.errors import RetryableStepError
from stepkit.privacy import Vault, private_complete
from stepkit.providers import ChatMessage, ChatProvider, ChatRequest


class Prose:
    """A step's calls to the model, masked by one vault (its placeholders agree across the
    step's prompts). ``step`` is ``None`` outside a worker (tests, tools): nothing is
    reported then."""

    def __init__(
        self, provider: ChatProvider, vault: Vault, step: StepContext | None = None
    ) -> None:
        self._provider = provider
        self._vault = vault
        self._step = step

    @classmethod
    def for_step(cls, provider: ChatProvider, step: StepContext) -> Prose:
        """The step's prose, masked by a vault of its job input's private details."""
        return cls(provider, Vault.for_input(step.input), step)

    async def complete(
        self,
        prompt_id: str,
        messages: tuple[ChatMessage, ...],
        offline: Callable[[], Awaitable[str]],
        max_tokens: int,
    ) -> str:
        """The model's answer to ``messages`` (with ``local``: ``offline()``'s text),
        unmasked, as it came."""
        request = ChatRequest(prompt_id, messages, offline, max_tokens=max_tokens)
        step = self._step
        if step is None:
            return (await private_complete(self._provider, request, self._vault)).text
        before = "\n\n".join(step.written) + ("\n\n" if step.written else "")
        so_far = ""

        async def on_chunk(text: str) -> None:
            nonlocal so_far
            so_far += text
            await step.report_output(before + so_far)

        completion = await private_complete(self._provider, request, self._vault, on_chunk)
        usage = completion.usage
        step.record_usage(usage.model, usage.prompt_tokens, usage.completion_tokens, prompt_id)
        if answer := completion.text.strip():
            step.written.append(answer)
        return completion.text

    async def ask(
        self,
        prompt_id: str,
        messages: tuple[ChatMessage, ...],
        offline: Callable[[], Awaitable[str]],
        max_tokens: int,
    ) -> str:
        """:meth:`complete`, stripped; an empty answer is a retryable failure."""
        answer = (await self.complete(prompt_id, messages, offline, max_tokens)).strip()
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
