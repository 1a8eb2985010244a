-- Per-user limits that hold across job_api and notifier replicas.

-- Job creations per user per minute (fixed one-minute windows).
CREATE TABLE rate_limit_windows (
    owner        text        NOT NULL,
    window_start timestamptz NOT NULL,
    count        integer     NOT NULL,
    PRIMARY KEY (owner, window_start)
);

-- Open WatchJob streams. A notifier renews its rows while the streams live; rows of a
-- notifier that died expire on their own.
CREATE TABLE watch_sessions (
    id         uuid        PRIMARY KEY,
    owner      text        NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX watch_sessions_owner ON watch_sessions (owner, expires_at);

-- Counting a user's unfinished jobs for MAX_RUNNING_JOBS_PER_USER.
CREATE INDEX jobs_owner_active ON jobs (owner) WHERE status IN ('QUEUED', 'RUNNING');
