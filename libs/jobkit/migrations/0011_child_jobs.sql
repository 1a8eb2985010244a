-- Jobs a step creates (a bulk_import's rows) name the job that created them. No foreign
-- key: deleting a parent leaves its children, which are jobs of their own, and retention
-- deletes parents and children by their own age without ordering the two.
ALTER TABLE jobs ADD COLUMN parent_job_id uuid;

-- ListJobs by parent (newest first, like jobs_owner_newest), and cancelling a parent's
-- children, which only looks at the ones not finished.
CREATE INDEX jobs_parent_newest ON jobs (parent_job_id, created_at DESC, id DESC)
    WHERE parent_job_id IS NOT NULL;

-- new_job_row with the parent. The old type stays for writers of the previous release
-- during a rolling deploy (0008's rule: a type is never altered); it goes a release later.
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
    parent_job_id   uuid
);
