-- The orchestrator's own queries (services/orchestrator).

-- name: expired_leases --
-- Running attempts whose worker went silent past the lease, oldest first.
-- $1: at most this many.
SELECT job_id, name, attempt FROM job_steps
WHERE status = 'RUNNING' AND lease_expires_at < now()
ORDER BY lease_expires_at
LIMIT $1

-- name: erase_expired_jobs --
-- Retention: finished jobs older than the TTL, with their steps and events (ON DELETE
-- CASCADE); jobs a writer holds are left for the next round.
-- $1: seconds a finished job is kept, $2: at most this many.
DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs
    WHERE finished_at < now() - make_interval(secs => $1)
    ORDER BY finished_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED)
RETURNING id

-- name: outbox_backlog --
-- Outbox rows not yet published, and how long the oldest due one has waited (seconds).
SELECT count(*) AS backlog,
       coalesce(extract(epoch FROM now() - min(not_before) FILTER (WHERE not_before <= now())),
                0)::float8 AS oldest_due_s
FROM outbox
