-- ForkJob and job type versions.
--
-- The version of its type's step graph a job was created with (JobTypeSpec.version): the
-- orchestrator decides with that version's spec for the job's whole life, whatever a later
-- deploy changed (jobkit.catalog, Catalog.spec). Jobs from before versions were recorded
-- ran version 1.
ALTER TABLE jobs ADD COLUMN type_version integer NOT NULL DEFAULT 1 CHECK (type_version > 0);

-- The job a ForkJob copied its input and its leading checkpoints from, if any. No foreign
-- key, like parent_job_id: deleting the source leaves its forks as they are.
ALTER TABLE jobs ADD COLUMN forked_from_job_id uuid;

-- BulkRetryJobs / BulkCancelJobs walk the jobs of a status by keyset on (created_at, id).
CREATE INDEX jobs_status_oldest ON jobs (status, created_at, id);

-- new_job_row_v4 with the type version and the fork's source (0008's rule: a type is
-- never altered; v4 goes a release later).
CREATE TYPE new_job_row_v5 AS (
    id                 uuid,
    owner              text,
    type               text,
    status             text,
    progress           smallint,
    phase              text,
    input              bytea,
    idempotency_key    text,
    request_hash       bytea,
    last_sequence      bigint,
    trace_context      text,
    created_at         timestamptz,
    updated_at         timestamptz,
    version            bigint,
    parent_job_id      uuid,
    priority           smallint,
    not_before         timestamptz,
    deadline_at        timestamptz,
    concurrency_key    text,
    concurrency_limit  integer,
    webhook_url        text,
    type_version       integer,
    forked_from_job_id uuid
);

-- new_step_row with what a fork's reused step is inserted with: SUCCEEDED, the source's
-- output as its checkpoint, and when it was copied (new_step_row goes a release later).
CREATE TYPE new_step_row_v2 AS (
    job_id      uuid,
    position    smallint,
    name        text,
    status      text,
    output      bytea,
    finished_at timestamptz
);
