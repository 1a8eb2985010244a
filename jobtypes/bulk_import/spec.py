"""``bulk_import``: one job of ``job_type`` per JSON line of an upload, created in batches
that survive a crash mid-way: no row is imported twice, none is lost."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobkit.catalog import COMPUTE_RETRY, JobTypeSpec, RetryPolicy, StepSpec, obj, text
from jobkit.errors import FieldViolation

READ_UPLOAD = "read_upload"
CREATE_JOBS = "create_jobs"

#: A worker killed mid-import costs an attempt; the cursor keeps what it did.
_IMPORT_RETRY = RetryPolicy(max_attempts=6, initial_delay_s=0.2, max_delay_s=5.0)

_UUID = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def _check(document: Mapping[str, Any]) -> list[FieldViolation]:
    """The rows' type must be one this system runs, and neither an import itself nor an
    export (one user's history, many times over, is nothing an import is for)."""
    from jobtypes import CATALOG  # the catalogue is being built while this module loads

    job_type = document.get("job_type")
    if not isinstance(job_type, str) or job_type not in CATALOG:
        return [FieldViolation("input.job_type", "must be one of the job types")]
    if job_type == "bulk_import" or CATALOG[job_type].reads_history:
        return [FieldViolation("input.job_type", f"must not be {job_type}")]
    return []


SPEC = JobTypeSpec(
    name="bulk_import",
    description=(
        "Creates one job of input.job_type per line of an upload (POST /v1/uploads, "
        "CreateUpload): JSON Lines, each line a job's input. Rows are created in batches, "
        "each committed with the import's place in the file, so a crash mid-way resumes at "
        "the next row: none twice, none lost. A row that is not a valid input lands in the "
        "result's error list and the import goes on. The jobs it created are listed by "
        "ListJobs with parent_job_id; cancelling the import cancels those not finished."
    ),
    steps=(
        StepSpec(READ_UPLOAD, "Reading the file...", 0, timeout_s=600, retry=COMPUTE_RETRY),
        StepSpec(CREATE_JOBS, "Importing rows...", 5, timeout_s=3600, retry=_IMPORT_RETRY),
    ),
    input_schema=obj(
        {
            "upload_id": text(
                36, required=True, description="The file's uploadId, from POST /v1/uploads."
            )
            | {"pattern": _UUID},
            "job_type": text(64, required=True, description="The type of job each row is."),
        },
        required=("upload_id", "job_type"),
    ),
    check_input=_check,
)
