"""Every job type this system runs, one folder each.

``jobtypes/<name>/spec.py`` declares the type (a ``SPEC``: steps with their phases,
timeouts and retries, the input schema, step names as constants); job_api and the
orchestrator read it. ``jobtypes/<name>/steps.py`` runs it (``handlers(provider)``: one
handler per step); only ai_worker imports it. ``example.json`` is a request the page offers
and the catalogue tests run. Adding a type is a new folder and its name in :data:`NAMES`.
"""

from __future__ import annotations

import re
from importlib import import_module, resources

from jobkit.catalog import Catalog, JobTypeSpec

#: The registered job types, by folder name, in the order ListJobTypes shows them.
NAMES: tuple[str, ...] = (
    "cv_tailoring",
    "resume_improvement",
    "skill_gap_analysis",
    "interview_prep",
    "trip_generation",
    "itinerary_optimization",
    "research",
    "concierge_query",
    "career_insights",
    "bulk_import",
    "data_export",
    "noop",
)


def _spec(name: str) -> JobTypeSpec:
    spec = getattr(import_module(f"jobtypes.{name}.spec"), "SPEC", None)
    if not isinstance(spec, JobTypeSpec) or spec.name != name:
        raise TypeError(f"jobtypes/{name}/spec.py must define SPEC, a JobTypeSpec named {name!r}")
    return spec


CATALOG = Catalog(_spec(name) for name in NAMES)


_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def example(name: str) -> bytes | None:
    """The example CreateJob request (JSON) of job type ``name``, if it has one."""
    if not _NAME.fullmatch(name) or name not in CATALOG:
        return None
    path = resources.files(__name__) / name / "example.json"
    return path.read_bytes() if path.is_file() else None
