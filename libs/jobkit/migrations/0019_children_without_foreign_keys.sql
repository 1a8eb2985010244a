-- A job's steps and events no longer reference it by a foreign key. Each row the one write
-- statement (write_changes) inserted into them cost a referential check, a trigger that
-- locks the job's row FOR KEY SHARE: about a quarter of that statement's time, 9-15 us a
-- row, 11 rows a three-step job (auto_explain in a throughput run), 0.07-0.1 CPU-ms a job
-- of Postgres's 0.5-0.7 (two interleaved pairs with the constraints dropped).
--
-- What they guarded still holds. Steps and events are written only by that statement, and
-- only for the jobs it inserts or updates (a job that is gone fails it whole: jobs_expect),
-- under those jobs' row locks. The two deletes (delete_job, erase_jobs) lock the jobs first,
-- in a statement of their own, then delete the steps and events with them: no writer can
-- add any once the lock is held, and those added before are seen. Webhook deliveries keep
-- theirs: a few jobs have them.
ALTER TABLE job_steps DROP CONSTRAINT job_steps_job_id_fkey;
ALTER TABLE job_events DROP CONSTRAINT job_events_job_id_fkey;
