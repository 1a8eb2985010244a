-- Jobs whose artifacts are still to be deleted from the object store. A job of a type that
-- saves artifacts leaves a row here in the transaction that deletes it (DeleteJob,
-- retention); the orchestrator's artifact sweeper deletes everything under the job's
-- prefix, then the row. So a crash between the two loses nothing: the row stays until the
-- objects are gone, and deleting a prefix twice is harmless.
CREATE TABLE artifact_deletions (
    job_id       uuid        PRIMARY KEY,
    owner        text        NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX artifact_deletions_oldest ON artifact_deletions (requested_at);
