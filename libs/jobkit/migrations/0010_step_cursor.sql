-- A long step's own progress marker (StepContext.save_cursor), serialized
-- google.protobuf.Struct: committed with the attempt that saved it and handed to the
-- step's next attempt, so that an interrupted import picks up where it was.
ALTER TABLE job_steps ADD COLUMN cursor bytea;

-- step_update_row with the cursor. The old type stays for writers of the previous release
-- during a rolling deploy (0008's rule: a type is never altered); it goes a release later.
CREATE TYPE step_update_row_v2 AS (
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
    cursor           bytea
);
