-- The jobs tables, shared by the services that read or write jobs (jobkit.store).

-- name: fetch_jobs --
-- Jobs with their steps, one row a job: each step column arrives as an array, in step
-- order. $1: the job ids.
SELECT j.id, j.owner, j.type, j.status, j.progress, j.phase, j.input, j.result,
       j.error_code, j.error_message, j.last_sequence, j.created_at, j.updated_at,
       j.finished_at, j.trace_context, j.version,
       s.step_job_id, s.step_position, s.step_name, s.step_status, s.step_attempt,
       s.step_retry_base, s.step_output, s.step_error_code, s.step_error_message,
       s.step_lease_expires_at, s.step_started_at, s.step_finished_at
FROM jobs AS j
CROSS JOIN LATERAL (
    SELECT array_agg(o.job_id) AS step_job_id,
           array_agg(o.position) AS step_position,
           array_agg(o.name) AS step_name,
           array_agg(o.status) AS step_status,
           array_agg(o.attempt) AS step_attempt,
           array_agg(o.retry_base) AS step_retry_base,
           array_agg(o.output) AS step_output,
           array_agg(o.error_code) AS step_error_code,
           array_agg(o.error_message) AS step_error_message,
           array_agg(o.lease_expires_at) AS step_lease_expires_at,
           array_agg(o.started_at) AS step_started_at,
           array_agg(o.finished_at) AS step_finished_at
    FROM (SELECT * FROM job_steps WHERE job_id = j.id ORDER BY position) AS o
) AS s
WHERE j.id = ANY($1::uuid[])

-- name: fetch_jobs_for_update --
-- fetch_jobs, holding the jobs' row locks until commit: taken in id order, so concurrent
-- batches never deadlock. $1: the job ids.
SELECT j.id, j.owner, j.type, j.status, j.progress, j.phase, j.input, j.result,
       j.error_code, j.error_message, j.last_sequence, j.created_at, j.updated_at,
       j.finished_at, j.trace_context, j.version,
       s.step_job_id, s.step_position, s.step_name, s.step_status, s.step_attempt,
       s.step_retry_base, s.step_output, s.step_error_code, s.step_error_message,
       s.step_lease_expires_at, s.step_started_at, s.step_finished_at
FROM jobs AS j
CROSS JOIN LATERAL (
    SELECT array_agg(o.job_id) AS step_job_id,
           array_agg(o.position) AS step_position,
           array_agg(o.name) AS step_name,
           array_agg(o.status) AS step_status,
           array_agg(o.attempt) AS step_attempt,
           array_agg(o.retry_base) AS step_retry_base,
           array_agg(o.output) AS step_output,
           array_agg(o.error_code) AS step_error_code,
           array_agg(o.error_message) AS step_error_message,
           array_agg(o.lease_expires_at) AS step_lease_expires_at,
           array_agg(o.started_at) AS step_started_at,
           array_agg(o.finished_at) AS step_finished_at
    FROM (SELECT * FROM job_steps WHERE job_id = j.id ORDER BY position) AS o
) AS s
WHERE j.id = ANY($1::uuid[])
ORDER BY j.id
FOR UPDATE OF j

-- name: fetch_events --
-- A page of a job's events after a sequence, oldest first.
-- $1: job id, $2: after this sequence, $3: at most this many.
SELECT job_id, sequence, type, status, progress, phase, step, attempt, message,
       retry_delay_ms, occurred_at, partial_output
FROM job_events
WHERE job_id = $1 AND sequence > $2
ORDER BY sequence
LIMIT $3

-- name: fetch_usage --
-- Model usage rows of some jobs, in the order recorded. $1: the job ids.
SELECT job_id, step, model, prompt_tokens, completion_tokens, cost_usd, prompts
FROM model_usage
WHERE job_id = ANY($1::uuid[])
ORDER BY id

-- name: tokens_used_since --
-- A user's model tokens recorded since an instant, and when the oldest of them was.
-- $1: owner, $2: since.
SELECT coalesce(sum(prompt_tokens + completion_tokens), 0) AS tokens,
       min(recorded_at) AS oldest
FROM model_usage
WHERE owner = $1 AND recorded_at > $2
