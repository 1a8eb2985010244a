-- Signed completion webhooks (jobkit.webhooks; the notifier delivers them). CreateJob's
-- optional webhook_url, already checked (https, no address webhooks may not reach).
ALTER TABLE jobs ADD COLUMN webhook_url text;

-- One row per event POSTed to a job's webhook_url, written by the statement that commits
-- the event (jobkit.store, write_changes), with the outbox row that hands it to JetStream's
-- JOB_WEBHOOKS. The notifier records each try here: how many, the last HTTP status or the
-- class of error (never the response body), and the end: delivered, or dead (a dead
-- letter). A deleted job's deliveries go with it.
CREATE TABLE webhook_deliveries (
    -- The webhook-id header, the same on every try: "<job id>:<event sequence>".
    webhook_id      text        PRIMARY KEY,
    job_id          uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    sequence        bigint      NOT NULL,
    -- The payload's type: job.succeeded, job.failed, job.cancelled.
    type            text        NOT NULL,
    state           text        NOT NULL DEFAULT 'pending'
                                CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    last_status     integer,
    -- refused, dns, connect, timeout, tls, protocol: why the last try got no response.
    last_error      text,
    created_at      timestamptz NOT NULL,
    last_attempt_at timestamptz,
    next_attempt_at timestamptz,
    finished_at     timestamptz,
    UNIQUE (job_id, sequence)
);

-- A delivery enqueued with its event (jobkit.store).
CREATE TYPE webhook_row AS (
    webhook_id text,
    job_id     uuid,
    sequence   bigint,
    type       text,
    created_at timestamptz
);

-- new_job_row_v3 with the webhook URL (0008's rule: a type is never altered; v3 goes a
-- release later).
CREATE TYPE new_job_row_v4 AS (
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
    concurrency_limit integer,
    webhook_url       text
);
