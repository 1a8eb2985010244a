-- Optimistic concurrency for the orchestrator: it reads jobs without locking them and
-- writes each decision only if the job is still at the version it read. Every write to a
-- job row bumps its version (store.apply_changes).
ALTER TABLE jobs ADD COLUMN version bigint NOT NULL DEFAULT 0;

-- The guard those writes use: a job that moved on (or went) since it was read fails the
-- whole statement with serialization_failure, and the writer decides again from a fresh
-- read. A WHERE clause that merely skipped the row would commit the rest of the batch -
-- its steps, events and outbox rows - without it.
CREATE FUNCTION jobs_expect(actual bigint, expected bigint, what text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF actual IS DISTINCT FROM expected THEN
        RAISE EXCEPTION '% is %, expected %', what, actual, expected
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN true;
END
$$;
