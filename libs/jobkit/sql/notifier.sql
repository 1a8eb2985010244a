-- The notifier's own queries (services/notifier).

-- name: replay_page --
-- Who may watch a job, the trace its logs join, how far it has got, and a page of its
-- events after a sequence, oldest first, in one snapshot: one row per event, or one row
-- with NULL event columns when there is none after it; no row when there is no such job.
-- $1: job id, $2: after this sequence, $3: at most this many events.
SELECT j.owner, j.trace_context, j.status AS job_status, j.last_sequence AS job_last_sequence,
       e.job_id, e.sequence, e.type, e.status, e.progress, e.phase, e.step, e.attempt,
       e.message, e.retry_delay_ms, e.occurred_at, e.partial_output, e.input_request
FROM jobs j
LEFT JOIN LATERAL (
    SELECT job_id, sequence, type, status, progress, phase, step, attempt, message,
           retry_delay_ms, occurred_at, partial_output, input_request
    FROM job_events
    WHERE job_id = j.id AND sequence > $2
    ORDER BY sequence
    LIMIT $3
) e ON true
WHERE j.id = $1
ORDER BY e.sequence

-- name: last_sequences --
-- The newest event sequence of each job, for waking watchers that fell behind.
-- $1: the job ids.
SELECT id, last_sequence FROM jobs WHERE id = ANY($1::uuid[])
