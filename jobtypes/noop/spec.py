"""``noop``: three steps that wait, fail on request and stream text; for diagnostics and
benchmarks."""

from __future__ import annotations

from jobkit.catalog import Field, JobTypeSpec, RetryPolicy, StepSpec

PREPARE = "prepare"
WORK = "work"
FINISH = "finish"

_RETRY = RetryPolicy(max_attempts=5, initial_delay_s=0.05, max_delay_s=2.0)

SPEC = JobTypeSpec(
    name="noop",
    description=(
        "Three steps that do nothing but wait input.sleep_ms milliseconds each and fail "
        "input.fail_attempts times with a retryable error first; with input.write, each step "
        "streams that text word by word over its wait, as a model would; with input.tokens, "
        "each step accounts that many prompt tokens (and half as many completion tokens) "
        "to the model 'noop'. For diagnostics and benchmarks."
    ),
    steps=(
        StepSpec(PREPARE, "Preparing...", 0, timeout_s=660, retry=_RETRY),
        StepSpec(WORK, "Working...", 33, timeout_s=660, retry=_RETRY),
        StepSpec(FINISH, "Finishing...", 66, timeout_s=660, retry=_RETRY),
    ),
    input_schema={
        "sleep_ms": Field((float, int), minimum=0, maximum=600_000),
        "fail_attempts": Field((float, int), minimum=0, maximum=100),
        "write": Field(str, max_length=20_000),
        "tokens": Field((float, int), minimum=0, maximum=1_000_000),
    },
)
