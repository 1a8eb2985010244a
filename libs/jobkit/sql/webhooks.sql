-- Webhook deliveries (jobkit.webhooks): enqueued by write_changes (jobs.sql) with their
-- events, tried by the notifier, listed by job_api.

-- name: webhook_delivery_due --
-- What one try needs: the delivery's record, its job's URL and trace, and the event it
-- carries. No row: the job was deleted, its deliveries with it. $1: webhook id.
SELECT d.state, d.attempts, d.next_attempt_at, j.webhook_url, j.trace_context,
       e.job_id, e.sequence, e.type, e.status, e.progress, e.phase, e.step, e.attempt,
       e.message, e.retry_delay_ms, e.occurred_at, e.partial_output,
       e.input_request
FROM webhook_deliveries AS d
JOIN jobs AS j ON j.id = d.job_id
JOIN job_events AS e ON e.job_id = d.job_id AND e.sequence = d.sequence
WHERE d.webhook_id = $1

-- name: record_webhook_attempt --
-- A try's outcome, on a delivery still pending (a repeat of a finished one changes
-- nothing). $1: webhook id, $2: its state now, $3: tries made, $4: the HTTP status (or
-- NULL), $5: the class of error (or NULL), $6: when it was tried, $7: when the next try
-- is due (NULL: none), $8: when it was delivered or given up on (NULL: not yet).
UPDATE webhook_deliveries
SET state = $2, attempts = $3, last_status = $4, last_error = $5, last_attempt_at = $6,
    next_attempt_at = $7, finished_at = $8
WHERE webhook_id = $1 AND state = 'pending'

-- name: list_webhook_deliveries --
-- A job's deliveries, oldest first. $1: job id, $2: at most this many.
SELECT webhook_id, job_id, sequence, type, state, attempts, last_status, last_error,
       created_at, last_attempt_at, next_attempt_at, finished_at
FROM webhook_deliveries
WHERE job_id = $1
ORDER BY sequence
LIMIT $2
