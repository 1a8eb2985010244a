-- The jobs tables, shared by the services that read or write jobs (jobkit.store).

-- name: fetch_jobs --
-- Jobs with their steps, one row a job: each step column arrives as an array, in step
-- order. $1: the job ids.
SELECT j.id, j.owner, j.type, j.status, j.progress, j.phase, j.input, j.result,
       j.error_code, j.error_message, j.last_sequence, j.created_at, j.updated_at,
       j.finished_at, j.trace_context, j.version, j.parent_job_id, j.priority,
       j.not_before, j.deadline_at, j.concurrency_key, j.concurrency_limit, j.webhook_url,
       j.type_version, j.forked_from_job_id,
       s.step_job_id, s.step_position, s.step_name, s.step_status, s.step_attempt,
       s.step_retry_base, s.step_output, s.step_error_code, s.step_error_message,
       s.step_lease_expires_at, s.step_started_at, s.step_finished_at, s.step_cursor,
       s.step_percent, s.step_input_request
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
           array_agg(o.finished_at) AS step_finished_at,
           array_agg(o.cursor) AS step_cursor,
           array_agg(o.percent) AS step_percent,
           array_agg(o.input_request) AS step_input_request
    FROM (SELECT * FROM job_steps WHERE job_id = j.id ORDER BY position) AS o
) AS s
WHERE j.id = ANY($1::uuid[])

-- name: lock_jobs --
-- Take the jobs' row locks until commit, in id order, so concurrent batches never
-- deadlock; fetch_jobs then reads them in a statement of its own. One statement that
-- locked and read would be wrong: a row it waited for comes back in its committed version,
-- but the steps joined to it from the statement's older snapshot. $1: the job ids.
SELECT id FROM jobs WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE

-- name: fetch_events --
-- A page of a job's events after a sequence, oldest first.
-- $1: job id, $2: after this sequence, $3: at most this many.
SELECT job_id, sequence, type, status, progress, phase, step, attempt, message,
       retry_delay_ms, occurred_at, partial_output, input_request
FROM job_events
WHERE job_id = $1 AND sequence > $2
ORDER BY sequence
LIMIT $3

-- name: write_changes --
-- A batch of decisions in one statement, one round trip (jobkit.store._write): one
-- parameter per table, an array of that table's row type (migration 0008). The
-- data-modifying CTEs all run to completion whether or not the final SELECT reads them;
-- an empty array makes its CTE a no-op.
-- $1 new_job_row_v5[], $2 new_step_row_v2[], $3 job_update_row[], $4 step_update_row_v3[],
-- $5 event_row_v2[], $6 usage_row[], $7 outbox_row[] (in the order to publish), $8 ready_row[]
-- (step attempts held for the fair dispatcher), $9 webhook_row[] (the deliveries of the
-- events in $5 that a job's webhook gets; their outbox messages are in $7), $10 job ids and
-- $11 msg ids (pairwise) of step attempts whose first word from a worker this records: a
-- ready-queue row they were handed out from (release_ready's hidden rows) has done its part.
WITH new_jobs AS (
    -- A row inserted by this statement is invisible to its UPDATEs: new jobs go in whole.
    INSERT INTO jobs (id, owner, type, status, progress, phase, input, idempotency_key,
                      request_hash, last_sequence, trace_context, created_at, updated_at,
                      version, parent_job_id, priority, not_before, deadline_at,
                      concurrency_key, concurrency_limit, webhook_url, type_version,
                      forked_from_job_id)
    SELECT n.id, n.owner, n.type, n.status, n.progress, n.phase, n.input, n.idempotency_key,
           n.request_hash, n.last_sequence, n.trace_context, n.created_at, n.updated_at,
           n.version, n.parent_job_id, n.priority, n.not_before, n.deadline_at,
           n.concurrency_key, n.concurrency_limit, n.webhook_url, n.type_version,
           n.forked_from_job_id
    FROM unnest($1::new_job_row_v5[]) AS n
    RETURNING id),
new_steps AS (
    -- A fork's reused steps go in SUCCEEDED, with the source's checkpoint as output.
    -- Only with their job, inserted above (no foreign key says so: 0019).
    INSERT INTO job_steps (job_id, position, name, status, output, finished_at)
    SELECT n.job_id, n.position, n.name, n.status, n.output, n.finished_at
    FROM unnest($2::new_step_row_v2[]) AS n
    WHERE n.job_id IN (SELECT id FROM new_jobs)),
job_updates AS (
    UPDATE jobs AS j
    SET status = u.status, progress = u.progress, phase = u.phase, result = u.result,
        error_code = u.error_code, error_message = u.error_message,
        last_sequence = u.last_sequence, updated_at = u.updated_at,
        finished_at = u.finished_at, version = u.version
    FROM unnest($3::job_update_row[]) AS u
    -- Only from the version the decision was made from; otherwise the whole statement
    -- fails (serialization_failure) and the writer decides again.
    WHERE j.id = u.id AND jobs_expect(j.version, u.version - 1, 'job version')
    RETURNING j.id),
step_updates AS (
    UPDATE job_steps AS s
    SET status = u.status, attempt = u.attempt, retry_base = u.retry_base,
        output = u.output, error_code = u.error_code, error_message = u.error_message,
        lease_expires_at = u.lease_expires_at, started_at = u.started_at,
        finished_at = u.finished_at, cursor = u.cursor, percent = u.percent,
        input_request = u.input_request
    FROM unnest($4::step_update_row_v3[]) AS u
    -- Through job_updates: a job's row is locked before its steps, the order every
    -- writer follows, so concurrent writers never deadlock.
    JOIN job_updates AS ju ON ju.id = u.job_id
    WHERE s.job_id = u.job_id AND s.position = u.position),
new_events AS (
    INSERT INTO job_events (job_id, sequence, type, status, progress, phase, step, attempt,
                            message, retry_delay_ms, occurred_at, partial_output,
                            input_request)
    SELECT e.job_id, e.sequence, e.type, e.status, e.progress, e.phase, e.step, e.attempt,
           e.message, e.retry_delay_ms, e.occurred_at, e.partial_output, e.input_request
    FROM unnest($5::event_row_v2[]) AS e
    -- After the job's row, like the steps: the next sequence is unique per job, and a
    -- concurrent writer of the same one would otherwise wait on us.
    WHERE e.job_id IN (SELECT id FROM job_updates UNION ALL SELECT id FROM new_jobs)),
new_usage AS (
    INSERT INTO model_usage (owner, job_id, job_type, step, attempt, model, prompt_tokens,
                             completion_tokens, cost_usd, prompts, recorded_at)
    SELECT u.owner, u.job_id, u.job_type, u.step, u.attempt, u.model, u.prompt_tokens,
           u.completion_tokens, u.cost_usd, u.prompts, u.recorded_at
    FROM unnest($6::usage_row[]) AS u
    -- After the job's row, like the events (same reason: a unique key).
    WHERE u.job_id IN (SELECT id FROM job_updates)
    ON CONFLICT (job_id, step, attempt, model) DO NOTHING),
new_outbox AS (
    INSERT INTO outbox (subject, msg_id, payload, not_before, trace_context)
    SELECT o.subject, o.msg_id, o.payload, o.not_before, o.trace_context
    FROM unnest($7::outbox_row[]) WITH ORDINALITY AS o
    ORDER BY o.ordinality
    RETURNING id, msg_id),
new_ready AS (
    INSERT INTO ready_steps (job_id, owner, concurrency_key, concurrency_limit, priority,
                             subject, msg_id, payload, trace_context, not_before)
    SELECT r.job_id, r.owner, r.concurrency_key, r.concurrency_limit, r.priority, r.subject,
           r.msg_id, r.payload, r.trace_context, r.not_before
    FROM unnest($8::ready_row[]) WITH ORDINALITY AS r
    ORDER BY r.ordinality),
new_webhooks AS (
    INSERT INTO webhook_deliveries (webhook_id, job_id, sequence, type, created_at)
    SELECT w.webhook_id, w.job_id, w.sequence, w.type, w.created_at
    FROM unnest($9::webhook_row[]) AS w
    -- After the job's row, like the events (whose key this one follows).
    WHERE w.job_id IN (SELECT id FROM job_updates UNION ALL SELECT id FROM new_jobs)),
claimed AS (
    -- By the job's index, then the attempt: most have no row (released through JetStream).
    -- After the job's row, like the steps (a cancel deletes the job's rows holding it);
    -- from an array, so that the jobs updated are not compared with every row.
    DELETE FROM ready_steps AS r
    WHERE r.job_id = ANY (ARRAY(SELECT id FROM job_updates WHERE id = ANY ($10::uuid[])))
      AND r.msg_id = ANY ($11::text[]))
-- One row, always evaluated: a job deleted since it was read fails the whole statement
-- like one that changed.
SELECT jobs_expect((SELECT count(*) FROM job_updates), cardinality($3::job_update_row[]),
                   'jobs updated') AS ok,
       (SELECT array_agg(id ORDER BY id) FROM new_outbox) AS ids,
       (SELECT array_agg(msg_id ORDER BY id) FROM new_outbox) AS msg_ids

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

-- name: erase_jobs --
-- A real delete: jobs with their steps and events (webhook deliveries by ON DELETE
-- CASCADE); the artifacts of those of a type that saves them are left to the sweeper
-- (artifact_deletions). The caller holds the jobs' row locks from an earlier statement of
-- its transaction, so no writer adds a step or an event this one does not see (steps and
-- events reference their job by no foreign key: 0019). Returns the jobs deleted.
-- $1: job ids, $2: the job types whose jobs save artifacts.
WITH gone AS (
    DELETE FROM jobs WHERE id = ANY($1::uuid[]) RETURNING id, owner, type
), steps AS (
    DELETE FROM job_steps WHERE job_id = ANY($1::uuid[])
), events AS (
    DELETE FROM job_events WHERE job_id = ANY($1::uuid[])
), doomed AS (
    INSERT INTO artifact_deletions (kind, id, owner)
    SELECT 'job', id, owner FROM gone WHERE type = ANY($2::text[])
    ON CONFLICT (kind, id) DO NOTHING
)
SELECT id FROM gone
