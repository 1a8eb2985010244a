-- The orchestrator's own queries (services/orchestrator).

-- name: expired_leases --
-- Running attempts whose worker went silent past the lease, and steps whose wait for an
-- answer ran out (the lease of a WAITING_INPUT step), oldest first (job_steps_lease_v2).
-- $1: at most this many.
SELECT job_id, name, attempt FROM job_steps
WHERE status IN ('RUNNING', 'WAITING_INPUT') AND lease_expires_at < now()
ORDER BY lease_expires_at
LIMIT $1

-- name: passed_deadlines --
-- Jobs not finished whose deadline has passed, the most overdue first (jobs_deadline_due_v2).
-- $1: at most this many.
SELECT id FROM jobs
WHERE deadline_at IS NOT NULL AND status IN ('QUEUED', 'RUNNING', 'WAITING_INPUT')
  AND deadline_at < now()
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

-- name: ready_groups --
-- The fair dispatcher's view of the ready queue: how many attempts are due in each group
-- (services/orchestrator/fairness.py), and a capped group's limit (its starts carry it).
SELECT owner, concurrency_key, priority, concurrency_limit IS NOT NULL AS capped,
       count(*) AS waiting, min(concurrency_limit) AS concurrency_limit
FROM ready_steps
WHERE not_before <= now()
GROUP BY owner, concurrency_key, priority, concurrency_limit IS NOT NULL

-- name: ready_due --
-- How many attempts are due in the ready queue (the backlog the dispatchers report).
SELECT count(*) FROM ready_steps WHERE not_before <= now()

-- name: running_under_keys --
-- For capped keys: how many of the owner's jobs with the key are released (no start of
-- theirs waits in ready_steps) and unfinished. $1: owners, $2: keys (pairwise).
SELECT k.owner, k.concurrency_key,
       (SELECT count(*) FROM jobs AS j
        WHERE j.owner = k.owner AND j.concurrency_key = k.concurrency_key
          AND j.status IN ('QUEUED', 'RUNNING', 'WAITING_INPUT')
          AND NOT EXISTS (SELECT 1 FROM ready_steps AS r
                          WHERE r.job_id = j.id AND r.concurrency_limit IS NOT NULL)
       ) AS running
FROM unnest($1::text[], $2::text[]) AS k(owner, concurrency_key)

-- name: release_ready --
-- Take the picked attempts, each group's oldest due first, out of the ready queue, to be
-- published before the commit (under the dispatch lock): a crash between the two
-- publishes them again, which Nats-Msg-Id drops. An attempt whose job has finished
-- (cancelled, past its deadline) or gone comes back marked, to be dropped.
-- Unless a capped start is among them, the transaction commits without waiting for the
-- WAL flush (the InitPlan below, as for the outbox's delete): a release lost in a
-- server crash is released again, and JetStream drops the repeat (or the attempt's
-- fencing does, past its de-duplication window). A capped start's release is what its
-- cap counts, so it must not come back: that commit waits.
-- $1 owners, $2 keys, $3 priorities, $4 capped, $5 counts (pairwise: one entry a group).
WITH picked AS (
    SELECT r.id
    FROM unnest($1::text[], $2::text[], $3::smallint[], $4::bool[], $5::int[])
         AS g(owner, concurrency_key, priority, capped, n)
    CROSS JOIN LATERAL (
        SELECT id FROM ready_steps AS r
        WHERE r.owner = g.owner AND r.concurrency_key = g.concurrency_key
          AND r.priority = g.priority AND (r.concurrency_limit IS NOT NULL) = g.capped
          AND r.not_before <= now()
        ORDER BY r.id
        LIMIT g.n
        FOR UPDATE SKIP LOCKED) AS r
), taken AS (
    DELETE FROM ready_steps AS r USING picked WHERE r.id = picked.id
    RETURNING r.*
)
SELECT t.id, t.subject, t.msg_id, t.payload, t.trace_context, t.owner, t.priority,
       t.enqueued_at,
       -- A scalar subquery, looked up by id for each row (an EXISTS may be planned as
       -- a hash of every unfinished job, rebuilt on every release).
       coalesce((SELECT j.status FROM jobs AS j WHERE j.id = t.job_id)
                IN ('QUEUED', 'RUNNING', 'WAITING_INPUT'), false) AS live
FROM taken AS t
WHERE (SELECT set_config('synchronous_commit',
                         CASE WHEN true = ANY($4::bool[]) THEN 'on' ELSE 'off' END,
                         true)) IS NOT NULL
ORDER BY t.id

-- name: try_dispatch_lock --
-- One dispatcher releases at a time, across orchestrator replicas: the count under a cap
-- and the release that follows it are one decision. Held until the transaction ends.
SELECT pg_try_advisory_xact_lock(hashtextextended('jobs.dispatch', 0))
