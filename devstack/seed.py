"""A user's history written straight into Postgres, as the system would have left it:
what the export benchmark and the export chaos scenario read, without running thousands of
jobs first. Set-based SQL, one statement: 100,000 jobs take seconds."""

from __future__ import annotations

import asyncpg
from google.protobuf import struct_pb2

#: A seeded job's input and result: a sentence, as a short job has.
TEXT = (
    "Tailor this résumé for a data engineering role: lead with the pipelines, the "
    "warehouse migration and the on-call work; keep it to one page."
)

_HISTORY = """
WITH seeded AS (
    INSERT INTO jobs (id, owner, type, status, progress, phase, input, result, last_sequence,
                      created_at, updated_at, finished_at, version)
    SELECT gen_random_uuid(), $1, 'noop', 'SUCCEEDED', 100, 'Done', $2::bytea, $3::bytea, 8,
           now() - make_interval(secs => $4 - n), now() - make_interval(secs => $4 - n),
           now() - make_interval(secs => $4 - n), 9
    FROM generate_series(1, $4) AS n
    RETURNING id, created_at),
steps AS (
    INSERT INTO job_steps (job_id, position, name, status, attempt, output, started_at,
                           finished_at)
    SELECT s.id, p.position, p.name, 'SUCCEEDED', 1, $3::bytea, s.created_at, s.created_at
    FROM seeded AS s
    CROSS JOIN (VALUES (0, 'prepare'), (1, 'work'), (2, 'finish')) AS p (position, name))
INSERT INTO job_events (job_id, sequence, type, status, progress, phase, step, attempt,
                        occurred_at)
SELECT s.id, e.sequence, e.type, e.status, e.progress, e.phase, e.step, e.attempt,
       s.created_at
FROM seeded AS s
CROSS JOIN (VALUES
    (1, 'CREATED', 'QUEUED', 0, 'Queued', '', 0),
    (2, 'STEP_STARTED', 'RUNNING', 0, 'Preparing...', 'prepare', 1),
    (3, 'STEP_SUCCEEDED', 'RUNNING', 33, 'Preparing...', 'prepare', 1),
    (4, 'STEP_STARTED', 'RUNNING', 33, 'Working...', 'work', 1),
    (5, 'STEP_SUCCEEDED', 'RUNNING', 66, 'Working...', 'work', 1),
    (6, 'STEP_STARTED', 'RUNNING', 66, 'Finishing...', 'finish', 1),
    (7, 'STEP_SUCCEEDED', 'RUNNING', 99, 'Finishing...', 'finish', 1),
    (8, 'SUCCEEDED', 'SUCCEEDED', 100, 'Done', '', 0)
) AS e (sequence, type, status, progress, phase, step, attempt)
"""


async def seed_history(conn: asyncpg.Connection, owner: str, jobs: int) -> None:
    """``jobs`` finished ``noop`` jobs of ``owner``, one a second up to now, each with its
    three steps, an input and a result of a sentence each, and its eight events."""
    given = struct_pb2.Struct()
    given.update({"write": TEXT})
    result = struct_pb2.Struct()
    result.update({"written": TEXT, "step": "finish", "attempt": 1})
    await conn.execute(_HISTORY, owner, given.SerializeToString(), result.SerializeToString(), jobs)
