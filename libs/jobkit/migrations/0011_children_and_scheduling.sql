-- Jobs a step creates (a bulk_import's rows) name the job that created them. No foreign
-- key: deleting a parent leaves its children, which are jobs of their own, and retention
-- deletes parents and children by their own age without ordering the two.
ALTER TABLE jobs ADD COLUMN parent_job_id uuid;

-- ListJobs by parent (newest first, like jobs_owner_newest), and cancelling a parent's
-- children, which only looks at the ones not finished.
CREATE INDEX jobs_parent_newest ON jobs (parent_job_id, created_at DESC, id DESC)
    WHERE parent_job_id IS NOT NULL;

-- Scheduling, as CreateJob asked for it: a priority (1-9, 5 by default), a time before
-- which the job does not start, a deadline (absolute: created_at + the requested
-- duration), and the key its concurrency is shared by.
ALTER TABLE jobs ADD COLUMN priority smallint NOT NULL DEFAULT 5 CHECK (priority BETWEEN 1 AND 9);
ALTER TABLE jobs ADD COLUMN not_before timestamptz;
ALTER TABLE jobs ADD COLUMN deadline_at timestamptz;
ALTER TABLE jobs ADD COLUMN concurrency_key text;

-- The orchestrators' deadline scan: only jobs with a deadline that are not finished.
CREATE INDEX jobs_deadline_due ON jobs (deadline_at)
    WHERE deadline_at IS NOT NULL AND status IN ('QUEUED', 'RUNNING');

-- new_job_row with the parent and the scheduling fields. The old type stays for writers of
-- the previous release during a rolling deploy (0008's rule: a type is never altered); it
-- goes a release later.
CREATE TYPE new_job_row_v2 AS (
    id              uuid,
    owner           text,
    type            text,
    status          text,
    progress        smallint,
    phase           text,
    input           bytea,
    idempotency_key text,
    request_hash    bytea,
    last_sequence   bigint,
    trace_context   text,
    created_at      timestamptz,
    updated_at      timestamptz,
    version         bigint,
    parent_job_id   uuid,
    priority        smallint,
    not_before      timestamptz,
    deadline_at     timestamptz,
    concurrency_key text
);
