"""One model call from inside a step, the way every step makes them: the prompt masked by
the step's vault, the answer streamed to watchers as the step's partial output, and the
call's tokens recorded as the step's usage."""

from __future__ import annotations

from services.ai_worker.handlers import StepContext, current_step
from services.ai_worker.privacy import Vault, private_complete
from services.ai_worker.providers import ChatProvider, ChatRequest


async def ask_model(
    provider: ChatProvider,
    request: ChatRequest,
    vault: Vault,
    step: StepContext | None = None,
) -> str:
    """The model's answer to ``request`` (with ``local``: its offline text), unmasked.

    Inside a step (``step``, or the one this task runs), watchers see everything the step
    has written so far, its earlier answers joined by blank lines, grow as this one
    streams in; outside one (tests, tools), nothing is reported.
    """
    step = step or current_step()
    if step is None:
        return (await private_complete(provider, request, vault)).text
    before = "\n\n".join(step.written) + ("\n\n" if step.written else "")
    so_far = ""

    async def on_chunk(text: str) -> None:
        nonlocal so_far
        so_far += text
        await step.report_output(before + so_far)

    completion = await private_complete(provider, request, vault, on_chunk)
    usage = completion.usage
    step.record_usage(usage.model, usage.prompt_tokens, usage.completion_tokens, request.prompt_id)
    if answer := completion.text.strip():
        step.written.append(answer)
    return completion.text
