-- Row types for batched writes: a batch goes to Postgres as ONE array parameter of one of
-- these per table (`$1::job_update_row[]`), instead of one array per column. Each has a
-- Python twin, a NamedTuple of the same fields in the same order (jobkit.store), and a test
-- holds the two together (tests/integration/test_store.py, against pg_attribute).
--
-- A type is never altered: a writer of the previous release may still be running during a
-- rolling deploy. A new shape is a new type (`job_update_row_v2`), the old one dropped a
-- release later.

-- A job created by CreateJob (with its idempotency key), inserted whole.
CREATE TYPE new_job_row AS (
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
    version         bigint
);

-- A new job's planned step, not started yet.
CREATE TYPE new_step_row AS (
    job_id   uuid,
    position smallint,
    name     text,
    status   text
);

-- A decision's new job row; `version` is the one it writes, one past the one it read.
CREATE TYPE job_update_row AS (
    id            uuid,
    status        text,
    progress      smallint,
    phase         text,
    result        bytea,
    error_code    text,
    error_message text,
    last_sequence bigint,
    updated_at    timestamptz,
    finished_at   timestamptz,
    version       bigint
);

-- A decision's changed step.
CREATE TYPE step_update_row AS (
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
    finished_at      timestamptz
);

-- An event appended to a job's log, with the sequence the writer gave it.
CREATE TYPE event_row AS (
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
    partial_output text
);

-- Model usage of a step attempt whose result was accepted, priced.
CREATE TYPE usage_row AS (
    owner             text,
    job_id            uuid,
    job_type          text,
    step              text,
    attempt           integer,
    model             text,
    prompt_tokens     bigint,
    completion_tokens bigint,
    cost_usd          double precision,
    prompts           text,
    recorded_at       timestamptz
);

-- A message to publish after the commit (not before `not_before`).
CREATE TYPE outbox_row AS (
    subject       text,
    msg_id        text,
    payload       bytea,
    not_before    timestamptz,
    trace_context text
);
