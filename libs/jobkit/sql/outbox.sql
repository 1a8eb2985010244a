-- The transactional outbox's relay (jobkit.outbox).

-- name: delete_published_outbox --
-- Rows the fast path has published, gone. The scalar subquery runs once (an InitPlan)
-- and turns synchronous commit off for this statement's own transaction only: losing
-- the delete in a crash just means a re-publish that Nats-Msg-Id de-duplicates, so it
-- need not wait for the WAL flush, and the whole thing stays one round trip.
-- $1: the row ids.
DELETE FROM outbox
WHERE id = ANY($1::bigint[])
  AND (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL

-- name: defer_taken_offers --
-- Rows whose step attempt a worker took when offered (jobkit.offers), marked taken and
-- left for the sweeper once $2 seconds have passed. By then the worker has reported on
-- the attempt (a result, or its first heartbeat within a second), and the sweeper deletes
-- the row; if not, the worker is presumed dead, and the sweeper publishes the attempt for
-- another, as JetStream redelivers one whose worker went silent. Synchronous commit off,
-- as above: lost in a crash, the row is swept sooner, and the attempt may run twice (its
-- second result fenced).
-- $1: the row ids, $2: seconds.
UPDATE outbox SET not_before = now() + make_interval(secs => $2), taken = true
WHERE id = ANY($1::bigint[])
  AND (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL

-- name: claim_stale_outbox --
-- Due rows nobody published in time (a relay died, NATS was down, or a worker took the
-- step when offered), oldest first, locked so that replicas never claim the same ones.
-- A taken offer's row says whether its worker has reported on the attempt already (the
-- step's record has reached that attempt, or is over: a new job's step is recorded at
-- its previous attempt until its worker reports): then it is only deleted, since
-- publishing it would run the attempt again. Every other row is published, whatever its
-- step's record says: the orchestrator records an attempt as it dispatches it, and a
-- dispatch whose publish failed must still go out. $1: seconds overdue, $2: batch size.
SELECT o.id, o.subject, o.msg_id, o.payload, o.trace_context,
       o.taken AND EXISTS (
           SELECT 1 FROM job_steps s
           WHERE s.job_id = a.parts[1]::uuid AND s.name = a.parts[2]
             AND (s.attempt >= a.parts[3]::int
                  OR s.status IN ('SUCCEEDED', 'FAILED', 'CANCELLED'))
       ) AS reported
FROM outbox o
CROSS JOIN LATERAL (
    SELECT CASE WHEN o.subject LIKE 'jobs.steps.%' OR o.subject LIKE 'jobs.express.%'
                THEN regexp_match(o.msg_id, '^([0-9a-f-]{36}):(.+):([0-9]+)$')
           END AS parts
) a
WHERE o.not_before <= now() - make_interval(secs => $1)
ORDER BY o.id LIMIT $2 FOR UPDATE OF o SKIP LOCKED

-- name: delete_outbox --
-- Rows the sweeper has published, gone, in its transaction. $1: the row ids.
DELETE FROM outbox WHERE id = ANY($1::bigint[])
