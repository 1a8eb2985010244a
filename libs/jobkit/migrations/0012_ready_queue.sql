-- Fair dispatch (services/orchestrator/dispatcher.py). While workers are saturated, step
-- attempts wait here instead of in JetStream's first-in, first-out queue, and an
-- orchestrator releases them to JetStream in the order the fair policy picks
-- (services/orchestrator/fairness.py): round-robin over users, then over a user's
-- concurrency keys, then by priority. A job with a concurrency limit always starts from
-- here: it is released only while fewer than its limit of its owner's jobs with its key
-- are released and unfinished.
CREATE TABLE ready_steps (
    id                bigserial PRIMARY KEY,
    job_id            uuid        NOT NULL,
    owner             text        NOT NULL,
    -- '' when the job has no key: one group per user.
    concurrency_key   text        NOT NULL DEFAULT '',
    concurrency_limit integer,
    priority          smallint    NOT NULL,
    subject           text        NOT NULL,
    msg_id            text        NOT NULL,
    payload           bytea       NOT NULL,
    trace_context     text        NOT NULL DEFAULT '',
    not_before        timestamptz NOT NULL,
    enqueued_at       timestamptz NOT NULL DEFAULT now()
);

-- The release: a group's oldest rows first (and the groups summed, from the same index).
CREATE INDEX ready_steps_group ON ready_steps (owner, concurrency_key, priority, id);
-- Is a job still waiting (the cap counts only released jobs)?
CREATE INDEX ready_steps_job ON ready_steps (job_id);

-- A job's cap, as CreateJob asked for it.
ALTER TABLE jobs ADD COLUMN concurrency_limit integer
    CHECK (concurrency_limit IS NULL OR concurrency_limit > 0);

-- Counting a key's released, unfinished jobs.
CREATE INDEX jobs_concurrency_key_live ON jobs (owner, concurrency_key)
    WHERE concurrency_key IS NOT NULL AND status IN ('QUEUED', 'RUNNING');

-- new_job_row_v2 with the cap (0008's rule: a type is never altered; v2 goes a release
-- later).
CREATE TYPE new_job_row_v3 AS (
    id                uuid,
    owner             text,
    type              text,
    status            text,
    progress          smallint,
    phase             text,
    input             bytea,
    idempotency_key   text,
    request_hash      bytea,
    last_sequence     bigint,
    trace_context     text,
    created_at        timestamptz,
    updated_at        timestamptz,
    version           bigint,
    parent_job_id     uuid,
    priority          smallint,
    not_before        timestamptz,
    deadline_at       timestamptz,
    concurrency_key   text,
    concurrency_limit integer
);

-- A step attempt to hold in ready_steps rather than publish (jobkit.store).
CREATE TYPE ready_row AS (
    job_id            uuid,
    owner             text,
    concurrency_key   text,
    concurrency_limit integer,
    priority          smallint,
    subject           text,
    msg_id            text,
    payload           bytea,
    trace_context     text,
    not_before        timestamptz
);
