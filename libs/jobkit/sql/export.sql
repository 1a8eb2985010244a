-- job_api's ExportService (services/job_api/export.py): a user's whole history, read in one
-- read-only REPEATABLE READ transaction, so every statement sees the same snapshot.

-- name: export_count --
-- How many jobs an export holds. $1: owner, $2: the exporting job (left out).
SELECT count(*) FROM jobs WHERE owner = $1 AND id <> $2

-- name: export_job_ids --
-- The jobs an export holds, oldest first (index jobs_owner_newest, read backwards); read
-- through a server-side cursor, a batch at a time. $1: owner, $2: the exporting job.
SELECT id FROM jobs
WHERE owner = $1 AND id <> $2
ORDER BY created_at, id

-- name: export_events --
-- The events of a batch of jobs, each job's in sequence order. $1: the job ids.
SELECT job_id, sequence, type, status, progress, phase, step, attempt, message,
       retry_delay_ms, occurred_at, partial_output, input_request
FROM job_events
WHERE job_id = ANY($1::uuid[])
ORDER BY job_id, sequence
