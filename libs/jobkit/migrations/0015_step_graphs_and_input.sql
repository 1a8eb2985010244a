-- Step graphs (steps whose dependencies are met run in parallel) and steps that wait for a
-- person's answer (WAITING_INPUT, SubmitInput).

-- The new statuses. A job waiting for input holds no worker; its step's answer becomes
-- the step's checkpoint.
ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('QUEUED', 'RUNNING', 'WAITING_INPUT', 'SUCCEEDED', 'FAILED', 'CANCELLED'));
ALTER TABLE job_steps DROP CONSTRAINT job_steps_status_check;
ALTER TABLE job_steps ADD CONSTRAINT job_steps_status_check
    CHECK (status IN ('PENDING', 'RUNNING', 'RETRYING', 'WAITING_INPUT', 'SUCCEEDED', 'FAILED',
                      'CANCELLED'));

-- How far each step is (its last progress report): a job's progress sums its steps',
-- weighted, since several may run at once.
ALTER TABLE job_steps ADD COLUMN percent smallint NOT NULL DEFAULT 0
    CHECK (percent BETWEEN 0 AND 100);
-- While WAITING_INPUT: what the step asks (a serialized jobs.v1.InputRequest), which an
-- answer is checked against.
ALTER TABLE job_steps ADD COLUMN input_request bytea;
-- The INPUT_REQUIRED event's request, for a client replaying the log.
ALTER TABLE job_events ADD COLUMN input_request bytea;

-- A waiting job's deadline still passes, and a waiting step's own wait runs out (its
-- lease_expires_at): the scans' partial indexes cover the new status.
CREATE INDEX jobs_deadline_due_v2 ON jobs (deadline_at)
    WHERE deadline_at IS NOT NULL AND status IN ('QUEUED', 'RUNNING', 'WAITING_INPUT');
DROP INDEX jobs_deadline_due;
CREATE INDEX job_steps_lease_v2 ON job_steps (lease_expires_at)
    WHERE status IN ('RUNNING', 'WAITING_INPUT');
DROP INDEX job_steps_lease;
-- A waiting job keeps its place under its key's cap: its answer resumes it at once.
CREATE INDEX jobs_concurrency_key_live_v2 ON jobs (owner, concurrency_key)
    WHERE concurrency_key IS NOT NULL AND status IN ('QUEUED', 'RUNNING', 'WAITING_INPUT');
DROP INDEX jobs_concurrency_key_live;

-- step_update_row_v2 with the step's percent and input request (0008's rule: a type is
-- never altered; v2 goes a release later).
CREATE TYPE step_update_row_v3 AS (
    job_id           uuid,
    position         smallint,
    status           text,
    attempt          integer,
    retry_base       integer,
    output           bytea,
    error_code       text,
    error_message    text,
    lease_expires_at timestamptz,
    started_at       timestamptz,
    finished_at      timestamptz,
    cursor           bytea,
    percent          smallint,
    input_request    bytea
);

-- event_row with an INPUT_REQUIRED event's request (event_row goes a release later).
CREATE TYPE event_row_v2 AS (
    job_id         uuid,
    sequence       bigint,
    type           text,
    status         text,
    progress       smallint,
    phase          text,
    step           text,
    attempt        integer,
    message        text,
    retry_delay_ms integer,
    occurred_at    timestamptz,
    partial_output text,
    input_request  bytea
);
