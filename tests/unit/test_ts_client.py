"""The generated TypeScript client: current with the protos, and one method per route."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_ts_client", ROOT / "scripts" / "gen_ts_client.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_checked_in_client_is_current() -> None:
    generator = _generator()
    assert generator.OUT.read_text(encoding="utf-8") == generator.render()


def test_one_typed_method_per_route_and_the_messages_as_types() -> None:
    text = _generator().render()
    methods = set(re.findall(r"^  (\w+)\(", text, flags=re.MULTILINE))
    assert methods >= {
        "createJob",
        "getJob",
        "listJobs",
        "cancelJob",
        "retryJob",
        "deleteJob",
        "listJobTypes",
        "createWatchToken",
        "watchJob",
    }
    assert "export interface Job {" in text
    assert "  sequence?: string;" in text  # int64 stays a string, exact in JavaScript
    assert 'export type JobStatus = "JOB_STATUS_UNSPECIFIED" | "JOB_STATUS_QUEUED"' in text
    assert "cancelJob(request: CancelJobRequest & { jobId: string }): Promise<Job>" in text
