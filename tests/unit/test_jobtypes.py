"""The checks every registered job type passes, run over the catalogue: a type added to
``jobtypes.NAMES`` is checked by adding it, with no test to copy."""

from __future__ import annotations

import inspect
import json
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

import jobtypes
from jobkit.catalog import JobTypeSpec
from jobtypes import CATALOG
from stepkit.providers import LocalProvider
from tests.unit.pipeline import run_steps

ROOT = Path(__file__).resolve().parents[2]
NAMES = list(CATALOG)
#: The upload bulk_import's example names: examples/bulk_import.jsonl, in these tests.
EXAMPLE_UPLOAD_ID = "00000000-0000-4000-8000-000000000000"


def test_every_folder_is_registered_and_every_name_has_a_folder() -> None:
    folders = {p.name for p in (ROOT / "jobtypes").iterdir() if (p / "spec.py").is_file()}
    assert folders == set(jobtypes.NAMES)
    assert len(jobtypes.NAMES) == len(set(jobtypes.NAMES))


def example_of(name: str) -> dict[str, Any]:
    body = jobtypes.example(name)
    assert body is not None, f"jobtypes/{name}/example.json is missing"
    example: dict[str, Any] = json.loads(body)
    return example


@pytest.mark.parametrize("name", NAMES)
def test_the_spec_is_a_well_formed_pipeline(name: str) -> None:
    spec = CATALOG[name]
    assert isinstance(spec, JobTypeSpec)
    assert spec.name == name
    assert spec.description.strip()
    assert len(spec.step_names) == len(set(spec.step_names)) > 0
    assert all(step.isidentifier() and step.islower() for step in spec.step_names)
    marks = [s.progress_start for s in spec.steps]
    # Progress only grows, and 100 is left for the terminal event.
    assert marks == sorted(set(marks))
    assert marks[0] >= 0
    assert marks[-1] < 100
    assert all(s.phase.strip().endswith("...") for s in spec.steps)
    assert all(s.timeout_s > 0 and s.retry.max_attempts >= 1 for s in spec.steps)
    assert spec.done_phase.strip()


@pytest.mark.parametrize("name", NAMES)
def test_step_names_are_the_spec_module_s_constants(name: str) -> None:
    """Handlers and checkpoints name steps by these constants, never by retyped strings."""
    module = import_module(f"jobtypes.{name}.spec")
    constants = {
        value for key, value in vars(module).items() if key.isupper() and isinstance(value, str)
    }
    assert set(CATALOG[name].step_names) <= constants


@pytest.mark.parametrize("name", NAMES)
def test_the_steps_module_has_one_handler_per_step_of_every_version_it_runs(name: str) -> None:
    handlers = import_module(f"jobtypes.{name}.steps").handlers(LocalProvider())
    spec = CATALOG[name]
    assert set(handlers) == {s for v in (spec, *spec.previous) for s in v.step_names}
    assert all(inspect.iscoroutinefunction(h) for h in handlers.values())


@pytest.mark.parametrize("name", NAMES)
def test_the_example_is_valid_input_and_empty_input_names_each_required_field(name: str) -> None:
    spec, example = CATALOG[name], example_of(name)
    assert example["type"] == name
    assert spec.validate_input(example["input"]) == []
    for violation in spec.validate_input({}):
        assert violation.field.startswith("input.")
        assert violation.description == "is required"


@pytest.mark.parametrize("name", NAMES)
async def test_the_example_runs_offline_to_the_same_result_twice(name: str) -> None:
    example = example_of(name)["input"]
    uploads = {EXAMPLE_UPLOAD_ID: (ROOT / "examples" / "bulk_import.jsonl").read_bytes()}
    first = await run_steps(name, example, uploads=uploads)
    second = await run_steps(name, example, uploads=uploads)
    assert list(first.outputs) == list(CATALOG[name].step_names)
    assert first.result
    assert first.result == second.result
    assert all(0 <= percent <= 100 for _, percent, _ in first.progress)
