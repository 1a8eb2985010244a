"""Step handlers of the ``cv_tailoring`` job: thin adapters from checkpoints to the text
engine in ``services.ai_worker.cv`` and back.

Each step's output is its checkpoint; later steps rebuild what they need from the earlier
checkpoints, so a step that runs again (a retry, a resumed job) sees exactly the same
inputs and produces the same output.
"""

from __future__ import annotations

from typing import Any

from jobkit.catalog import CV_TAILORING
from services.ai_worker.cv import (
    CvWriter,
    Match,
    PostingAnalysis,
    Profile,
    TailoredCv,
    WriterOutputError,
    analyze_posting,
    load_profile,
    render_preview,
    score_match,
    tailor_cv,
    tailoring_result,
    write_cover_letter,
)
from services.ai_worker.cv.model_writer import ModelCvWriter
from services.ai_worker.errors import PermanentStepError, RetryableStepError
from services.ai_worker.handlers import Handler, Registry, StepContext
from services.ai_worker.privacy import private_prompts
from services.ai_worker.providers import ChatProvider


def writer_for(provider: ChatProvider) -> CvWriter:
    """The writer of ``tailor_cv`` and ``write_cover_letter``: every piece of prose goes
    through ``provider`` (with ``local``, the template text, byte for byte)."""
    return ModelCvWriter(provider)


def _profile(ctx: StepContext) -> Profile:
    return Profile.from_dict(ctx.checkpoint("load_profile")["profile"])


def _analysis(ctx: StepContext) -> tuple[PostingAnalysis, Match]:
    posting = ctx.checkpoint("analyze_posting")
    return PostingAnalysis.from_dict(posting["analysis"]), Match.from_dict(posting["match"])


async def _load_profile(ctx: StepContext) -> dict[str, Any]:
    try:
        profile = load_profile(ctx.input["resume"])
    except ValueError:
        raise PermanentStepError("INVALID_RESUME", "the résumé needs at least a name") from None
    return {"profile": profile.to_dict()}


async def _analyze_posting(ctx: StepContext) -> dict[str, Any]:
    analysis = analyze_posting(ctx.input["job_posting"])
    await ctx.report_progress(50, "Matching your skills to the posting...")
    match = score_match(_profile(ctx), analysis)
    return {"analysis": analysis.to_dict(), "match": match.to_dict()}


def _writer_failed(error: WriterOutputError) -> RetryableStepError:
    # The message names skills, never the text the writer produced.
    return RetryableStepError("WRITER_OUTPUT_REJECTED", str(error))


def _tailor(writer: CvWriter) -> Handler:
    async def handler(ctx: StepContext) -> dict[str, Any]:
        analysis, match = _analysis(ctx)
        try:
            # Contact details from the input reach a model only as placeholders.
            with private_prompts(ctx.input):
                cv = await tailor_cv(_profile(ctx), analysis, match, writer)
        except WriterOutputError as error:
            raise _writer_failed(error) from None
        return {"tailored_cv": cv.to_dict()}

    return handler


def _cover_letter(writer: CvWriter) -> Handler:
    async def handler(ctx: StepContext) -> dict[str, Any]:
        analysis, match = _analysis(ctx)
        try:
            with private_prompts(ctx.input):
                letter = await write_cover_letter(_profile(ctx), analysis, match, writer)
        except WriterOutputError as error:
            raise _writer_failed(error) from None
        return {"cover_letter": letter}

    return handler


async def _render_preview(ctx: StepContext) -> dict[str, Any]:
    analysis, match = _analysis(ctx)
    cv = TailoredCv.from_dict(ctx.checkpoint("tailor_cv")["tailored_cv"])
    letter = str(ctx.checkpoint("write_cover_letter")["cover_letter"])
    preview = render_preview(cv, letter, match, analysis)
    # The last step's output is the job's result.
    return tailoring_result(cv, letter, match, preview)


def register(registry: Registry, writer: CvWriter) -> None:
    handlers: dict[str, Handler] = {
        "load_profile": _load_profile,
        "analyze_posting": _analyze_posting,
        "tailor_cv": _tailor(writer),
        "write_cover_letter": _cover_letter(writer),
        "render_preview": _render_preview,
    }
    registry.register_steps(CV_TAILORING.name, handlers)
