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

-- name: claim_stale_outbox --
-- Due rows nobody published in time (a relay died, NATS was down), oldest first, locked
-- so that replicas never claim the same ones. $1: seconds overdue, $2: batch size.
SELECT id, subject, msg_id, payload, trace_context FROM outbox
WHERE not_before <= now() - make_interval(secs => $1)
ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED

-- name: delete_outbox --
-- Rows the sweeper has published, gone, in its transaction. $1: the row ids.
DELETE FROM outbox WHERE id = ANY($1::bigint[])
