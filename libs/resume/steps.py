"""The step every résumé job type starts with, and reading its checkpoint back."""

from __future__ import annotations

from typing import Any

from resume import Profile, load_profile
from stepkit import PermanentStepError, StepContext


def profile_of(ctx: StepContext, step: str) -> Profile:
    """The profile that ``step`` (a :func:`load_resume` step) checkpointed."""
    return Profile.from_dict(ctx.checkpoint(step)["profile"])


async def load_resume(ctx: StepContext) -> dict[str, Any]:
    """Loads the input's résumé as a normalised profile (the same for every résumé type)."""
    try:
        profile = load_profile(ctx.input["resume"])
    except ValueError:
        raise PermanentStepError("INVALID_RESUME", "the résumé needs at least a name") from None
    return {"profile": profile.to_dict()}
