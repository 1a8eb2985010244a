"""``noop``: three steps that wait, fail on request and stream text; for diagnostics and
benchmarks."""

from __future__ import annotations

from jobkit.catalog import JobTypeSpec, RetryPolicy, StepSpec, number, obj, text

PREPARE = "prepare"
WORK = "work"
FINISH = "finish"

#: What the work step asks for with input.ask.
ASK_SCHEMA = {
    "type": "object",
    "properties": {"continue": {"const": True}},
    "required": ["continue"],
}

_RETRY = RetryPolicy(max_attempts=5, initial_delay_s=0.05, max_delay_s=2.0)

SPEC = JobTypeSpec(
    name="noop",
    description=(
        "Three steps that do nothing but wait input.sleep_ms milliseconds each and fail "
        "input.fail_attempts times with a retryable error first; with input.write, each step "
        "streams that text word by word over its wait, as a model would; with input.tokens, "
        "each step accounts that many prompt tokens (and half as many completion tokens) "
        "to the model 'noop'; with input.artifact_bytes, the last step saves an artifact of "
        "that many bytes, noop.bin, streamed to the object store; with input.count_to, each "
        "step counts to it, saving its place after each count (an in-step cursor), so an "
        "attempt after a failure resumes the count; with input.ask, the work step asks for input "
        '({"continue": true}) and the job waits for it, at most input.ask_timeout_s seconds '
        "if given. For diagnostics and benchmarks."
    ),
    steps=(
        StepSpec(PREPARE, "Preparing...", 0, timeout_s=660, retry=_RETRY),
        StepSpec(WORK, "Working...", 33, timeout_s=660, retry=_RETRY),
        StepSpec(FINISH, "Finishing...", 66, timeout_s=660, retry=_RETRY),
    ),
    saves_artifacts=True,
    input_schema=obj(
        {
            "sleep_ms": number(0, 600_000, description="Wait per step, in milliseconds."),
            "fail_attempts": number(0, 100, description="Retryable failures per step first."),
            "write": text(20_000, description="Text each step streams word by word."),
            "tokens": number(0, 1_000_000, description="Prompt tokens accounted per step."),
            "count_to": number(
                0, 10_000, description="Counts per step, each saved as the step's cursor."
            ),
            "artifact_bytes": number(
                0, 1 << 30, description="Size of the artifact the last step saves (noop.bin)."
            ),
            "ask": {"type": "boolean", "description": "The work step waits for an answer."},
            "ask_timeout_s": number(
                1, 86_400, description="How long the work step waits for its answer."
            ),
        }
    ),
)
