"""``data_export``: every job of the caller (inputs, results, events) as one JSON Lines
artifact."""

from __future__ import annotations

from jobkit.catalog import JobTypeSpec, RetryPolicy, StepSpec, obj

EXPORT_JOBS = "export_jobs"

#: The artifact's name and type.
EXPORT_NAME = "export.jsonl"
EXPORT_CONTENT_TYPE = "application/x-ndjson"

SPEC = JobTypeSpec(
    name="data_export",
    description=(
        "Every job of yours but this one, oldest first, as one JSON Lines artifact "
        "(export.jsonl): one line per job, holding the job as GetJob shows it, the input it "
        "was created with and its events in order. Takes no input."
    ),
    steps=(
        # A retry starts over: the artifact is written whole or not at all.
        StepSpec(
            EXPORT_JOBS,
            "Exporting your jobs...",
            0,
            timeout_s=900,
            retry=RetryPolicy(max_attempts=3, initial_delay_s=1.0, max_delay_s=30.0),
        ),
    ),
    done_phase="Export ready",
    saves_artifacts=True,
    reads_history=True,
    # Nothing to set: a member the export does not know is refused rather than ignored, so
    # a client that thinks it can narrow the export (by type, by date) learns it cannot.
    input_schema={
        **obj({}, description="No settings: the export holds every job of yours."),
        "additionalProperties": False,
    },
)
