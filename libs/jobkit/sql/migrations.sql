-- The migrator's own bookkeeping (jobkit.db.migrate); the migrations are in ../migrations.

-- name: migration_lock --
-- Serialises replicas migrating at once (a session lock). $1: the lock id.
SELECT pg_advisory_lock($1)

-- name: migration_unlock --
-- $1: the lock id.
SELECT pg_advisory_unlock($1)

-- name: create_migrations_table --
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now())

-- name: applied_migrations --
SELECT name FROM schema_migrations

-- name: record_migration --
-- $1: the migration's file name.
INSERT INTO schema_migrations (name) VALUES ($1)

-- name: is_primary --
-- Whether this session is on a writable primary (jobkit.db.primary_reachable): a standby
-- is in recovery until it is promoted.
SELECT NOT pg_is_in_recovery()
