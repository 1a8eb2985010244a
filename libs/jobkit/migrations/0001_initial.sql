-- Jobs, their planned steps (with checkpoints), their event log and the outbox.
-- Statuses are stored as the jobs.v1 enum names without prefix ('QUEUED', 'RUNNING', ...).

CREATE TABLE jobs (
    id              uuid PRIMARY KEY,
    owner           text        NOT NULL,
    type            text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    progress        smallint    NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    phase           text        NOT NULL DEFAULT '',
    -- google.protobuf.Struct, serialized: carried to workers as is, never parsed by SQL.
    input           bytea       NOT NULL,
    result          bytea,
    error_code      text,
    error_message   text,
    idempotency_key text,
    request_hash    bytea,
    -- The sequence of the job's newest event; the next event takes last_sequence + 1
    -- under the row lock, which keeps sequences gap-free.
    last_sequence   bigint      NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);

CREATE INDEX jobs_owner_newest ON jobs (owner, created_at DESC, id DESC);
CREATE UNIQUE INDEX jobs_owner_idempotency_key ON jobs (owner, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE job_steps (
    job_id          uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    position        smallint    NOT NULL,
    name            text        NOT NULL,
    status          text        NOT NULL DEFAULT 'PENDING'
                    CHECK (status IN ('PENDING', 'RUNNING', 'RETRYING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    -- Attempt numbers only ever grow, so a late report from an earlier attempt can never
    -- pass for the current one; RetryJob resets the budget by moving retry_base instead.
    attempt         integer     NOT NULL DEFAULT 0,
    retry_base      integer     NOT NULL DEFAULT 0,
    -- The step's checkpoint (google.protobuf.Struct), written once, when it succeeds.
    output          bytea,
    error_code      text,
    error_message   text,
    -- A RUNNING step whose lease has passed is presumed lost and re-dispatched.
    lease_expires_at timestamptz,
    started_at      timestamptz,
    finished_at     timestamptz,
    PRIMARY KEY (job_id, position),
    UNIQUE (job_id, name)
);

CREATE INDEX job_steps_lease ON job_steps (lease_expires_at) WHERE status = 'RUNNING';

CREATE TABLE job_events (
    job_id      uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    sequence    bigint      NOT NULL,
    type        text        NOT NULL,
    status      text        NOT NULL,
    progress    smallint    NOT NULL,
    phase       text        NOT NULL DEFAULT '',
    step        text        NOT NULL DEFAULT '',
    attempt     integer     NOT NULL DEFAULT 0,
    message     text        NOT NULL DEFAULT '',
    retry_delay_ms integer  NOT NULL DEFAULT 0,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, sequence)
);

-- Messages committed with a state change and published to NATS after the commit.
-- A row is deleted once JetStream has acknowledged it; rows left by a crash are
-- published again by any relay (Nats-Msg-Id makes the re-publish a no-op).
CREATE TABLE outbox (
    id           bigserial   PRIMARY KEY,
    subject      text        NOT NULL,
    msg_id       text        NOT NULL,
    payload      bytea       NOT NULL,
    -- Not published before this instant: how retry back-off is scheduled durably.
    not_before   timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX outbox_due ON outbox (not_before);
