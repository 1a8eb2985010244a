-- Per-user limits that hold across replicas (jobkit.limits).

-- name: lock_user --
-- Serialise one user's check-then-act across replicas until the transaction ends.
-- $1: the scope and the user, as 'scope:owner'.
SELECT pg_advisory_xact_lock(hashtextextended($1, 0))

-- name: count_creation --
-- Count one job creation in the current minute: the count so far, and the seconds until
-- the next minute's window. Its own transaction, whose commit does not wait for the WAL
-- flush (the scalar subquery, run once, turns synchronous commit off for this transaction
-- only): a count lost in a crash lets a user create a few jobs more that minute, and
-- every CreateJob under the limit would otherwise wait for a flush of its own before the
-- job's. Never inside a transaction that writes anything else: it would not wait either.
-- $1: owner.
INSERT INTO rate_limit_windows (owner, window_start, count)
SELECT $1, date_trunc('minute', now()), 1
WHERE (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL
ON CONFLICT (owner, window_start)
DO UPDATE SET count = rate_limit_windows.count + 1
RETURNING count,
          extract(epoch FROM date_trunc('minute', now()) + interval '1 minute' - now())
              AS wait_s

-- name: count_running_jobs --
-- A user's unfinished jobs, counted up to $2: past a quota nothing needs the exact
-- number, and the newcomer's check only asks whether there is one; a flood's own
-- CreateJobs would otherwise each count the whole flood. $1: owner, $2: the bound.
SELECT count(*) FROM (
    SELECT 1 FROM jobs WHERE owner = $1 AND status IN ('QUEUED', 'RUNNING') LIMIT $2
) AS unfinished

-- name: count_open_watches --
-- A user's WatchJob streams still alive. $1: owner.
SELECT count(*) FROM watch_sessions WHERE owner = $1 AND expires_at > now()

-- name: open_watch --
-- The last statement of the stream's check-then-act transaction (jobkit.limits), which it
-- commits without waiting for the WAL flush, as count_creation: a session lost in a crash
-- is a stream counted for less time than it lives, and each WatchJob would otherwise wait
-- for a flush before its first event. The watch sessions' other writes do the same.
-- $1: session id, $2: owner, $3: seconds to live unless renewed.
INSERT INTO watch_sessions (id, owner, expires_at)
SELECT $1, $2, now() + make_interval(secs => $3)
WHERE (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL

-- name: close_watch --
-- $1: session id.
DELETE FROM watch_sessions
WHERE id = $1 AND (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL

-- name: renew_watches --
-- $1: session ids, $2: seconds to live from now.
UPDATE watch_sessions SET expires_at = now() + make_interval(secs => $2)
WHERE id = ANY($1::uuid[])
  AND (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL

-- name: prune_rate_windows --
-- Finished one-minute windows.
DELETE FROM rate_limit_windows WHERE window_start < now() - interval '5 minutes'

-- name: prune_model_usage --
-- Usage kept a while past the token budget's day, for the operators' own accounting.
DELETE FROM model_usage WHERE recorded_at < now() - interval '35 days'

-- name: prune_watch_sessions --
-- Sessions of streams whose notifier died without closing them.
DELETE FROM watch_sessions WHERE expires_at < now()
