"""How a step handler says it failed: retry me, or don't.

Any other exception escaping a handler counts as retryable (a bug or a flaky dependency
is more often transient than not), with a generic message: its text may echo the input.
"""

from __future__ import annotations


class StepError(Exception):
    """Root of handler failures. ``code`` is stable; ``message`` is shown to the user and
    must not contain the job's input."""

    retryable = True
    #: Earliest the next attempt may start, in seconds; only a retryable error sets it.
    retry_after_s: float | None = None

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RetryableStepError(StepError):
    """Transient: a timeout, a rate limit, a model that answered badly. Try again.

    ``retry_after_s``, when set, is the earliest the next attempt may start (a rate-limited
    model's ``Retry-After``): the orchestrator waits at least that long, and longer if the
    step's back-off asks for more.
    """

    retryable = True

    def __init__(self, code: str, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(code, message)
        self.retry_after_s = retry_after_s


class PermanentStepError(StepError):
    """Retrying cannot help: the input cannot be processed. The job fails now."""

    retryable = False


class InputRequested(Exception):
    """Raised by ``StepContext.request_input``: the attempt ends asking a person for input.

    Not a failure: the step waits, holding no worker, until SubmitInput brings an answer
    matching ``schema``, which applied to ``draft`` becomes the step's checkpoint (the step
    does not run again).
    A handler that catches ``Exception`` must let this one through.
    """

    def __init__(
        self,
        prompt: str,
        schema: dict[str, object],
        draft: dict[str, object] | None = None,
        timeout_s: float | None = None,
    ) -> None:
        super().__init__(prompt)
        self.prompt = prompt
        self.schema = schema
        self.draft = draft
        self.timeout_s = timeout_s
