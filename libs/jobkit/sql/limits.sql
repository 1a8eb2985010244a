-- Per-user limits that hold across replicas (jobkit.limits).

-- name: lock_user --
-- Serialise one user's check-then-act across replicas until the transaction ends.
-- $1: the scope and the user, as 'scope:owner'.
SELECT pg_advisory_xact_lock(hashtextextended($1, 0))

-- name: count_creation --
-- Count one job creation in the current minute: the count so far, and the seconds until
-- the next minute's window. $1: owner.
INSERT INTO rate_limit_windows (owner, window_start, count)
VALUES ($1, date_trunc('minute', now()), 1)
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
-- $1: session id, $2: owner, $3: seconds to live unless renewed.
INSERT INTO watch_sessions (id, owner, expires_at)
VALUES ($1, $2, now() + make_interval(secs => $3))

-- name: close_watch --
-- $1: session id.
DELETE FROM watch_sessions WHERE id = $1

-- name: renew_watches --
-- $1: session ids, $2: seconds to live from now.
UPDATE watch_sessions SET expires_at = now() + make_interval(secs => $2)
WHERE id = ANY($1::uuid[])

-- name: prune_rate_windows --
-- Finished one-minute windows.
DELETE FROM rate_limit_windows WHERE window_start < now() - interval '5 minutes'

-- name: prune_model_usage --
-- Usage kept a while past the token budget's day, for the operators' own accounting.
DELETE FROM model_usage WHERE recorded_at < now() - interval '35 days'

-- name: prune_watch_sessions --
-- Sessions of streams whose notifier died without closing them.
DELETE FROM watch_sessions WHERE expires_at < now()
