-- The notifier's own queries (services/notifier).

-- name: job_owner_and_trace --
-- Who may watch a job, and the trace its logs join. $1: job id.
SELECT owner, trace_context FROM jobs WHERE id = $1

-- name: job_owner_and_progress --
-- Whether a replay has caught up with a job that is over. $1: job id.
SELECT owner, status, last_sequence FROM jobs WHERE id = $1

-- name: last_sequences --
-- The newest event sequence of each job, for waking watchers that fell behind.
-- $1: the job ids.
SELECT id, last_sequence FROM jobs WHERE id = ANY($1::uuid[])
