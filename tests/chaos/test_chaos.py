"""The chaos suite in its short form (CI): every scenario, fewer jobs (a fair backlog of
300 rather than 2,000); on the clustered stack, one NATS leader killed and one Postgres
failover. `make chaos` (and `make chaos CLUSTER=1`) runs the long form and prints the
tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos import cluster, fair, shapes
from tests.chaos.harness import SCENARIOS, render, run_all

pytestmark = pytest.mark.chaos


@pytest.mark.timeout(900)
async def test_no_job_is_lost_or_duplicated_whatever_is_killed(tmp_path: Path) -> None:
    outcomes = await run_all(tmp_path, list(SCENARIOS), jobs=30, sleep_ms=300)
    table = render(outcomes)
    print("\n" + table)
    assert [o.scenario for o in outcomes] == list(SCENARIOS)
    failed = [o.scenario for o in outcomes if not o.ok]
    assert not failed, table


@pytest.mark.timeout(600)
async def test_an_import_and_artifacts_survive_their_worker_and_their_store(
    tmp_path: Path,
) -> None:
    outcomes = await shapes.run_all(tmp_path, list(shapes.SCENARIOS), rows=2000)
    table = shapes.render(outcomes)
    print("\n" + table)
    assert [o.scenario for o in outcomes] == list(shapes.SCENARIOS)
    assert not [o.scenario for o in outcomes if not o.ok], table
    # The faults landed: the import was taken over twice, the writes were retried.
    assert all(o.retried > 0 for o in outcomes), table


@pytest.mark.timeout(600)
async def test_a_fair_backlog_survives_every_kill_and_stays_fair(tmp_path: Path) -> None:
    outcomes = await fair.run_all(tmp_path, list(fair.SCENARIOS), jobs=300)
    table = fair.render(outcomes)
    print("\n" + table)
    assert [o.scenario for o in outcomes] == list(fair.SCENARIOS)
    assert not [o.scenario for o in outcomes if not o.ok], table


@pytest.mark.timeout(300)
async def test_a_cluster_loses_nothing_to_a_nats_leader_or_the_postgres_primary(
    tmp_path: Path,
) -> None:
    outcomes = await cluster.run_all(tmp_path, cluster.SHORT, clients=4)
    table = cluster.render(outcomes)
    print("\n" + table)
    assert [o.scenario for o in outcomes] == cluster.SHORT
    assert not [o.scenario for o in outcomes if not o.ok], table
