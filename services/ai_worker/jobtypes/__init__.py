"""Job types added as one module each: ``<name>.py`` next to this file.

A module here handles the steps of one catalogue entry (``jobkit.catalog``, which job_api
and the orchestrator read) and exposes ``register(registry, provider)``; listing it in
:data:`MODULES` is its whole registration. ``cv_tailoring`` and ``noop`` predate the
package and register from ``cv_handlers`` and ``noop`` the same way.
"""

from __future__ import annotations

from types import ModuleType

from services.ai_worker.handlers import Registry
from services.ai_worker.jobtypes import resume_improvement as resume_improvement
from services.ai_worker.jobtypes import skill_gap_analysis as skill_gap_analysis
from services.ai_worker.providers import ChatProvider

#: Every job-type module of the package, registered by :func:`register_all`.
MODULES: tuple[ModuleType, ...] = (resume_improvement, skill_gap_analysis)


def register_all(registry: Registry, provider: ChatProvider) -> None:
    """Register every step handler of every module in :data:`MODULES`."""
    for module in MODULES:
        module.register(registry, provider)
