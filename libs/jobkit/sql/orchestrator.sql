-- The orchestrator's own queries (services/orchestrator).

-- name: expired_leases --
-- Running attempts whose worker went silent past the lease, oldest first.
-- $1: at most this many.
SELECT job_id, name, attempt FROM job_steps
WHERE status = 'RUNNING' AND lease_expires_at < now()
ORDER BY lease_expires_at
LIMIT $1

-- name: passed_deadlines --
-- Jobs not finished whose deadline has passed, the most overdue first (jobs_deadline_due).
-- $1: at most this many.
SELECT id FROM jobs
WHERE deadline_at IS NOT NULL AND status IN ('QUEUED', 'RUNNING') AND deadline_at < now()
ORDER BY deadline_at
LIMIT $1

-- name: erase_expired_jobs --
-- Retention: finished jobs older than the TTL, with their steps and events (ON DELETE
-- CASCADE), their artifacts left to the sweeper (artifact_deletions); jobs a writer holds
-- are left for the next round.
-- $1: seconds a finished job is kept, $2: at most this many, $3: the job types whose jobs
-- save artifacts.
WITH gone AS (
    DELETE FROM jobs WHERE id IN (
        SELECT id FROM jobs
        WHERE finished_at < now() - make_interval(secs => $1)
        ORDER BY finished_at
        LIMIT $2
        FOR UPDATE SKIP LOCKED)
    RETURNING id, owner, type
), doomed AS (
    INSERT INTO artifact_deletions (kind, id, owner)
    SELECT 'job', id, owner FROM gone WHERE type = ANY($3::text[])
    ON CONFLICT (kind, id) DO NOTHING
)
SELECT id FROM gone

-- name: erase_expired_uploads --
-- Uploads older than their TTL, their objects left to the sweeper (artifact_deletions).
-- $1: seconds an upload is kept, $2: at most this many.
WITH gone AS (
    DELETE FROM uploads WHERE id IN (
        SELECT id FROM uploads
        WHERE created_at < now() - make_interval(secs => $1)
        ORDER BY created_at
        LIMIT $2
        FOR UPDATE SKIP LOCKED)
    RETURNING id, owner
), doomed AS (
    INSERT INTO artifact_deletions (kind, id, owner)
    SELECT 'upload', id, owner FROM gone
    ON CONFLICT (kind, id) DO NOTHING
)
SELECT id FROM gone

-- name: claim_artifact_deletions --
-- Deleted jobs and expired uploads whose objects are still in the store, oldest first,
-- locked until the claiming transaction ends (replicas skip each other's).
-- $1: at most this many.
SELECT kind, id, owner FROM artifact_deletions
ORDER BY requested_at
LIMIT $1
FOR UPDATE SKIP LOCKED

-- name: finish_artifact_deletions --
-- Their objects are gone. $1: kinds, $2: ids (pairwise).
DELETE FROM artifact_deletions
WHERE (kind, id) IN (SELECT * FROM unnest($1::text[], $2::uuid[]))

-- name: outbox_backlog --
-- Outbox rows not yet published, and how long the oldest due one has waited (seconds).
SELECT count(*) AS backlog,
       coalesce(extract(epoch FROM now() - min(not_before) FILTER (WHERE not_before <= now())),
                0)::float8 AS oldest_due_s
FROM outbox
