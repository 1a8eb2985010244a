"""Placeholder until the cv engine lands."""

from __future__ import annotations

from typing import Any

from services.ai_worker.config import Settings
from services.ai_worker.handlers import Registry


def writer_for(settings: Settings) -> Any:
    return None


def register(registry: Registry, writer: Any) -> None:
    async def todo(ctx: Any) -> dict[str, Any]:
        return {}

    for step in (
        "load_profile",
        "analyze_posting",
        "tailor_cv",
        "write_cover_letter",
        "render_preview",
    ):
        registry.register("cv_tailoring", step, todo)
