"""The named queries: how the .sql files are read, and rules every statement keeps."""

from __future__ import annotations

import ast
import re
from dataclasses import fields
from pathlib import Path

import pytest

from jobkit import store
from jobkit.sql import Queries, parse, queries

ROOT = Path(__file__).resolve().parents[2]
#: No statement takes more parameters than this: a batch is one array parameter a table.
MAX_PARAMETERS = 12


def _statements() -> dict[str, str]:
    return {f.name: getattr(queries, f.name) for f in fields(Queries)}


def test_a_file_is_read_into_named_statements() -> None:
    text = """-- What this file holds.

-- name: first --
-- What the first one does: a comment, left out of the statement.
SELECT 1
-- an inline comment stays
FROM t

-- name: second_2 --
SELECT $1
"""
    assert parse(text) == {
        "first": "SELECT 1\n-- an inline comment stays\nFROM t",
        "second_2": "SELECT $1",
    }


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("SELECT 1\n-- name: a --\nSELECT 2\n", "before the first"),
        ("-- name: a --\nSELECT 1\n-- name: a --\nSELECT 2\n", "named twice"),
        ("-- name: a --\n\n-- name: b --\nSELECT 2\n", "empty"),
        ("-- name: a --\nSELECT 1\n-- name: b\nSELECT 2\n", "malformed header"),
        ("-- name: a --\nSELECT 1\n-- name: B --\nSELECT 2\n", "malformed header"),
    ],
)
def test_a_malformed_file_is_refused(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse(text)


@pytest.mark.parametrize("name", sorted(_statements()))
def test_no_statement_takes_many_parameters(name: str) -> None:
    numbers = {int(n) for n in re.findall(r"\$(\d+)", _statements()[name])}
    # Numbered from $1 without gaps, and few of them.
    assert numbers == set(range(1, len(numbers) + 1)), name
    assert len(numbers) <= MAX_PARAMETERS, name


def test_every_row_type_is_used_and_every_one_used_has_a_twin() -> None:
    used = {t for s in _statements().values() for t in re.findall(r"::(\w+_row(?:_v\d+)?)\[\]", s)}
    assert used == set(store.ROW_TYPES)


def test_jobs_are_locked_in_id_order_and_read_by_the_plain_read() -> None:
    assert queries.lock_jobs.endswith("ORDER BY id FOR UPDATE")
    assert "FOR UPDATE" not in queries.fetch_jobs


_DRIVER_CALLS = {"execute", "executemany", "fetch", "fetchrow", "fetchval", "prepare", "cursor"}


def _inline_sql(path: Path) -> list[int]:
    """Lines where a driver call is given SQL written in place rather than a named query."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _DRIVER_CALLS
            and node.args
            and isinstance(node.args[0], ast.Constant | ast.JoinedStr | ast.BinOp)
        ):
            lines.append(node.lineno)
    return lines


def test_the_product_runs_only_named_queries() -> None:
    sources = [
        p
        for folder in ("libs", "jobtypes", "services")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if "gen" not in p.relative_to(ROOT).parts
    ]
    inline = {str(p.relative_to(ROOT)): lines for p in sources if (lines := _inline_sql(p))}
    assert inline == {}, "SQL belongs in libs/jobkit/sql/*.sql under a '-- name: x --' header"
