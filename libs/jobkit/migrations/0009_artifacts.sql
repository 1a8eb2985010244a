-- Objects still to be deleted from the object store: a deleted job's artifacts (kind
-- 'job'), an expired upload (kind 'upload'). The transaction that deletes the job or the
-- upload leaves its row here; the orchestrators' sweeper deletes everything under its
-- prefix (jobkit.artifacts.job_prefix, upload_prefix), then the row. So a crash between
-- the two loses nothing: the row stays until the objects are gone, and deleting a prefix
-- twice is harmless.
CREATE TABLE artifact_deletions (
    kind         text        NOT NULL CHECK (kind IN ('job', 'upload')),
    id           uuid        NOT NULL,
    owner        text        NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, id)
);

CREATE INDEX artifact_deletions_oldest ON artifact_deletions (requested_at);

-- Files stored for later jobs (CreateUpload; bulk_import's upload_id), each under its
-- owner's prefix in the object store until it expires (UPLOAD_TTL_S).
CREATE TABLE uploads (
    id           uuid        PRIMARY KEY,
    owner        text        NOT NULL,
    size         bigint      NOT NULL,
    sha256       text        NOT NULL,
    content_type text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX uploads_created_at ON uploads (created_at);
