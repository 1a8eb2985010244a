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

-- name: lock_expired_jobs --
-- Retention: finished jobs older than the TTL, locked for erase_jobs in the same
-- transaction; jobs a writer holds are left for the next round.
-- $1: seconds a finished job is kept, $2: at most this many.
SELECT id FROM jobs
WHERE finished_at < now() - make_interval(secs => $1)
ORDER BY finished_at
LIMIT $2
FOR UPDATE SKIP LOCKED

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
-- The fair dispatcher's exact view of the ready queue: how many attempts are due in each
-- group (services/orchestrator/fairness.py: an owner, a key, a priority, and whether the
-- rows are capped starts), and a capped group's limit (the smallest its starts carry).
-- It reads every due row: about 0.3 microseconds each (15,000 waiting: 5 ms).
SELECT owner, concurrency_key, priority, concurrency_limit IS NOT NULL AS capped,
       count(*) AS waiting, min(concurrency_limit) AS concurrency_limit
FROM ready_steps
WHERE not_before <= now()
GROUP BY owner, concurrency_key, priority, concurrency_limit IS NOT NULL

-- name: ready_groups_in_turn --
-- The same for a wide or deep queue, as the next round needs it: for each lane (urgent:
-- priority 9, or not) the groups of its next owners in turn (services/orchestrator/
-- fairness.py: owners in "C" order, from the one after the last served, round the end),
-- each group's due attempts counted only up to $4 (what a round can release, and one
-- more: a group that has more is never emptied by it). Each read ($1, $2, $3 pairwise)
-- is a lane, the owner it starts after ('' for the first: a user is never ''), and how
-- many owners it takes (an owner counts whether or not its rows are due: a group with
-- none comes back with waiting 0). Owners and groups are found by skipping from one to
-- the next along ready_steps_turns (a loose index scan), each group's rows read as an
-- index range; its bounds say the group twice, as rows no smaller and no greater, not as
-- equalities, which let the planner order the rows by id alone and walk the primary key,
-- through the whole queue, to a newcomer's few. A lane's end is a bound on the lane
-- alone (<=), not an equality: beside an equality on the index's first column, the scan
-- started at the lane's first row, not at the row comparison's, and walked a deep
-- owner's every row to pass it (15 ms at 100,000). So it costs a few index probes a group
-- read, whatever the depth and the number of owners: 10,000 owners of one attempt each
-- cost 10 ms to count exactly, and ten of them a small part of that.
-- $1: lanes, $2: owners to start after, $3: owners to read, $4: at most this many a group.
WITH RECURSIVE groups AS (
    SELECT s.read, s.owners, 1 AS nth, first.*
    FROM unnest($1::bool[], $2::text[], $3::int[]) WITH ORDINALITY AS s(urgent, after, owners, read)
    CROSS JOIN LATERAL (
        SELECT r.priority >= 9 AS urgent, r.owner, r.concurrency_key, r.priority,
               r.concurrency_limit IS NOT NULL AS capped
        FROM ready_steps AS r
        WHERE (r.priority >= 9, r.owner) > (s.urgent, s.after) AND (r.priority >= 9) <= s.urgent
        ORDER BY r.priority >= 9, r.owner, r.concurrency_key, r.priority,
                 r.concurrency_limit IS NOT NULL
        LIMIT 1) AS first
    UNION ALL
    SELECT g.read, g.owners, g.nth + (next.owner <> g.owner)::int, next.*
    FROM groups AS g
    CROSS JOIN LATERAL (
        SELECT r.priority >= 9 AS urgent, r.owner, r.concurrency_key, r.priority,
               r.concurrency_limit IS NOT NULL AS capped
        FROM ready_steps AS r
        WHERE (r.priority >= 9, r.owner, r.concurrency_key, r.priority,
               r.concurrency_limit IS NOT NULL)
              > (g.urgent, g.owner, g.concurrency_key, g.priority, g.capped)
          AND (r.priority >= 9) <= g.urgent
        ORDER BY r.priority >= 9, r.owner, r.concurrency_key, r.priority,
                 r.concurrency_limit IS NOT NULL
        LIMIT 1) AS next
    WHERE g.nth + (next.owner <> g.owner)::int <= g.owners
)
SELECT g.read, g.owner, g.concurrency_key, g.priority, g.capped, c.waiting,
       c.concurrency_limit
FROM groups AS g
CROSS JOIN LATERAL (
    SELECT count(*) AS waiting, min(first.concurrency_limit) AS concurrency_limit
    FROM (SELECT r.concurrency_limit FROM ready_steps AS r
          WHERE (r.priority >= 9, r.owner, r.concurrency_key, r.priority,
                 r.concurrency_limit IS NOT NULL)
                >= (g.urgent, g.owner, g.concurrency_key, g.priority, g.capped)
            AND (r.priority >= 9, r.owner, r.concurrency_key, r.priority,
                 r.concurrency_limit IS NOT NULL)
                <= (g.urgent, g.owner, g.concurrency_key, g.priority, g.capped)
            AND r.not_before <= now()
          ORDER BY r.priority >= 9, r.owner, r.concurrency_key, r.priority,
                   r.concurrency_limit IS NOT NULL, r.id
          LIMIT $4) AS first
) AS c
ORDER BY g.read, g.nth

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
-- Take the picked attempts, each group's oldest due first (an index range a group, as in
-- ready_groups_in_turn), out of the ready queue, to be published before the commit
-- (under the dispatch lock): a crash between the two publishes them again, which
-- Nats-Msg-Id drops. An attempt whose job has finished (cancelled, past its deadline) or
-- gone comes back marked, to be dropped.
-- Up to $6 of them, the oldest not counted under a cap, are kept for the slots that
-- results free (Dispatcher.hand_out) instead: their rows stay, hidden (not due) for $7
-- seconds, a lease. The first word from the worker that runs one deletes its row
-- (write_changes' claimed); if none comes by then, the row is due again and released
-- again, as JetStream redelivers a dispatch whose worker went silent.
-- Unless a capped start is among them, the transaction commits without waiting for the
-- WAL flush (the InitPlan below, as for the outbox's delete): a release lost in a
-- server crash is released again, and JetStream drops the repeat (or the attempt's
-- fencing does, past its de-duplication window). A capped start's release is what its
-- cap counts, so it must not come back: that commit waits.
-- $1 owners, $2 keys, $3 priorities, $4 capped, $5 counts (pairwise: one entry a group),
-- $6 how many to keep at most, $7 their rows' lease in seconds.
WITH picked AS (
    SELECT r.id, r.uncapped
    FROM unnest($1::text[], $2::text[], $3::smallint[], $4::bool[], $5::int[])
         AS g(owner, concurrency_key, priority, capped, n)
    CROSS JOIN LATERAL (
        SELECT id, concurrency_limit IS NULL AS uncapped FROM ready_steps AS r
        WHERE (r.priority >= 9, r.owner, r.concurrency_key, r.priority,
               r.concurrency_limit IS NOT NULL)
              >= (g.priority >= 9, g.owner, g.concurrency_key, g.priority, g.capped)
          AND (r.priority >= 9, r.owner, r.concurrency_key, r.priority,
               r.concurrency_limit IS NOT NULL)
              <= (g.priority >= 9, g.owner, g.concurrency_key, g.priority, g.capped)
          AND r.not_before <= now()
        ORDER BY r.priority >= 9, r.owner, r.concurrency_key, r.priority,
                 r.concurrency_limit IS NOT NULL, r.id
        LIMIT g.n
        FOR UPDATE SKIP LOCKED) AS r
), kept AS (
    SELECT id FROM picked WHERE uncapped ORDER BY id LIMIT $6
), hidden AS (
    -- By id, from an array: joined to picked (whose size the planner cannot know), the
    -- delete hashed it and read the whole queue to match it, 49 ms at 100,000 waiting.
    UPDATE ready_steps AS r SET not_before = now() + make_interval(secs => $7)
    WHERE r.id = ANY (ARRAY(SELECT id FROM kept))
    RETURNING r.*
), taken AS (
    DELETE FROM ready_steps AS r
    WHERE r.id = ANY (ARRAY(SELECT id FROM picked EXCEPT SELECT id FROM kept))
    RETURNING r.*
), released AS (
    SELECT h.*, true AS kept FROM hidden AS h
    UNION ALL
    SELECT t.*, false AS kept FROM taken AS t
)
SELECT t.id, t.subject, t.msg_id, t.payload, t.trace_context, t.owner, t.priority,
       t.enqueued_at, t.kept,
       -- A scalar subquery, looked up by id for each row (an EXISTS may be planned as
       -- a hash of every unfinished job, rebuilt on every release).
       coalesce((SELECT j.status FROM jobs AS j WHERE j.id = t.job_id)
                IN ('QUEUED', 'RUNNING', 'WAITING_INPUT'), false) AS live
FROM released AS t
WHERE (SELECT set_config('synchronous_commit',
                         CASE WHEN true = ANY($4::bool[]) THEN 'on' ELSE 'off' END,
                         true)) IS NOT NULL
ORDER BY t.id

-- name: unhide_ready --
-- Attempts kept for freed slots that none took in time (Dispatcher._let_go): due again,
-- in their places (a group's rows go by id), for the policy to pick anew. Only while
-- still hidden: a row whose lease has passed may have been released since. $1: row ids.
UPDATE ready_steps SET not_before = now()
WHERE id = ANY ($1::bigint[]) AND not_before > now()

-- name: try_dispatch_lock --
-- One dispatcher releases at a time, across orchestrator replicas: the count under a cap
-- and the release that follows it are one decision. Held until the transaction ends.
SELECT pg_try_advisory_xact_lock(hashtextextended('jobs.dispatch', 0))
