"""Every SQL statement the services run, by name: ``conn.fetch(queries.fetch_events, ...)``.

The statements live in the ``*.sql`` files beside this module, each under a header naming
it, optionally followed by comment lines that say what it is for::

    -- name: fetch_events --
    -- A job's events after a sequence, oldest first.
    SELECT ... WHERE job_id = $1 AND sequence > $2 ...

They are read once, at import. ``Queries`` lists the names so that mypy checks every use;
a name in the files but not here, or here but in no file, or in two files, fails the
import. Batches go in as one array parameter of a row type per table (``$1::event_row_v2[]``,
the types in the migrations, their Python twins in ``jobkit.store``), so no statement
needs many parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from importlib import resources

_HEADER = re.compile(r"^-- name: ([a-z][a-z0-9_]*) --\n(?:--(?: .*)?\n)*", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Queries:
    """The named statements, one field per ``-- name: <field> --`` header."""

    # jobs.sql: the jobs tables, shared by the services (jobkit.store)
    fetch_jobs: str
    lock_jobs: str
    fetch_events: str
    write_changes: str
    erase_jobs: str
    fetch_usage: str
    tokens_used_since: str
    # limits.sql: per-user limits (jobkit.limits)
    lock_user: str
    count_creation: str
    count_running_jobs: str
    count_open_watches: str
    open_watch: str
    close_watch: str
    renew_watches: str
    prune_rate_windows: str
    prune_model_usage: str
    prune_watch_sessions: str
    # job_api.sql
    find_by_idempotency_key: str
    list_job_ids: str
    unfinished_children: str
    steps_waiting_their_turn: str
    bulk_job_ids: str
    insert_upload: str
    # notifier.sql
    replay_page: str
    last_sequences: str
    # export.sql: job_api's ExportService
    export_count: str
    export_job_ids: str
    export_events: str
    # orchestrator.sql
    expired_leases: str
    passed_deadlines: str
    lock_expired_jobs: str
    erase_expired_uploads: str
    claim_artifact_deletions: str
    finish_artifact_deletions: str
    outbox_backlog: str
    ready_groups: str
    ready_groups_in_turn: str
    running_under_keys: str
    release_ready: str
    unhide_ready: str
    try_dispatch_lock: str
    # outbox.sql: the outbox relay (jobkit.outbox)
    delete_published_outbox: str
    defer_taken_offers: str
    claim_stale_outbox: str
    delete_outbox: str
    # webhooks.sql: webhook deliveries (notifier, job_api)
    webhook_delivery_due: str
    record_webhook_attempt: str
    list_webhook_deliveries: str
    # migrations.sql: the migrator's own bookkeeping, and the primary check (jobkit.db)
    migration_lock: str
    migration_unlock: str
    create_migrations_table: str
    applied_migrations: str
    record_migration: str
    is_primary: str


def parse(text: str, source: str = "<sql>") -> dict[str, str]:
    """``{name: statement}`` from one file; anything before the first header must be
    comments or blank (a file's own description)."""
    for line in text.splitlines():
        if line.startswith("-- name:") and not _HEADER.match(line + "\n"):
            raise ValueError(f"{source}: malformed header {line!r}, not '-- name: <name> --'")
    parts = _HEADER.split(text)
    preamble = [line for line in parts[0].splitlines() if line.strip()]
    if any(not line.startswith("--") for line in preamble):
        raise ValueError(f"{source}: SQL before the first '-- name: <name> --' header")
    found: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        statement = body.strip()
        if not statement:
            raise ValueError(f"{source}: query {name} is empty")
        if name in found:
            raise ValueError(f"{source}: query {name} is named twice")
        found[name] = statement
    return found


def load() -> Queries:
    """Read every ``*.sql`` file of this package into ``Queries``."""
    found: dict[str, str] = {}
    where: dict[str, str] = {}
    folder = resources.files(__name__)
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        for name, statement in parse(entry.read_text(encoding="utf-8"), entry.name).items():
            if name in found:
                raise ValueError(f"query {name} is in both {where[name]} and {entry.name}")
            found[name] = statement
            where[name] = entry.name
    declared = {f.name for f in fields(Queries)}
    missing, unknown = declared - found.keys(), found.keys() - declared
    if missing or unknown:
        raise ValueError(
            f"queries declared in jobkit.sql.Queries but in no .sql file: {sorted(missing)}; "
            f"in a .sql file but not declared: {sorted(unknown)}"
        )
    return Queries(**found)


queries = load()
