-- job_api's own queries (services/job_api/repository.py).

-- name: find_by_idempotency_key --
-- $1: owner, $2: idempotency key.
SELECT id, request_hash FROM jobs WHERE owner = $1 AND idempotency_key = $2

-- name: list_job_ids --
-- A page of job ids, newest first, by keyset on (created_at, id); a NULL filter matches
-- every job. $1: owner, $2: status, $3: type, $4: parent job, $5 and $6: the created_at
-- and id of the previous page's last job (NULL for the first page), $7: page size.
SELECT id FROM jobs
WHERE ($1::text IS NULL OR owner = $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR type = $3)
  AND ($4::uuid IS NULL OR parent_job_id = $4)
  AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $7

-- name: unfinished_children --
-- Jobs a job's step created that are still queued or running, newest first, by keyset on
-- (created_at, id) along jobs_parent_newest: each slice reads only its own rows, however
-- many children were cancelled before it. $1: the parent, $2 and $3: the created_at and id
-- of the previous slice's last job (NULL for the first slice), $4: at most this many.
SELECT id, created_at FROM jobs
WHERE parent_job_id = $1 AND status IN ('QUEUED', 'RUNNING', 'WAITING_INPUT')
  AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $4

-- name: steps_waiting_their_turn --
-- Whether a user has a step attempt in the ready queue, waiting for the fair dispatcher
-- to release it: then their next job is no newcomer's (its express start would overtake
-- the one waiting). Both lanes' index ranges. $1: owner.
SELECT EXISTS (SELECT 1 FROM ready_steps
               WHERE (priority >= 9) = ANY (ARRAY[false, true]) AND owner = $1)

-- name: bulk_job_ids --
-- A slice of the jobs a bulk operation (BulkRetryJobs, BulkCancelJobs) takes, oldest
-- first, by keyset on (created_at, id) along jobs_status_oldest; a NULL filter matches
-- every job. $1: the statuses, $2: type, $3: owner, $4: created at or after, $5: created
-- before, $6 and $7: the created_at and id of the previous slice's last job (NULL for the
-- first slice), $8: at most this many.
SELECT id, created_at FROM jobs
WHERE status = ANY($1::text[])
  AND ($2::text IS NULL OR type = $2)
  AND ($3::text IS NULL OR owner = $3)
  AND ($4::timestamptz IS NULL OR created_at >= $4)
  AND ($5::timestamptz IS NULL OR created_at < $5)
  AND ($6::timestamptz IS NULL OR (created_at, id) > ($6, $7::uuid))
ORDER BY created_at, id
LIMIT $8

-- name: insert_upload --
-- A file stored for later jobs. $1: id, $2: owner, $3: size, $4: sha256, $5: content type.
INSERT INTO uploads (id, owner, size, sha256, content_type) VALUES ($1, $2, $3, $4, $5)
RETURNING created_at
