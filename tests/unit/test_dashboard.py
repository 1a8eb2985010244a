"""The Grafana dashboard (deploy/grafana/jobs-dashboard.json) imports and queries only
metrics that jobkit.metrics defines, and shows every one of them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from jobkit import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "jobs-dashboard.json"


def defined_metrics() -> dict[str, set[str]]:
    """Each jobkit metric's name -> the series names Prometheus stores for it."""
    found: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        (family,) = value.describe()
        name = family.name
        if isinstance(value, Counter):
            found[name] = {f"{name}_total"}
        elif isinstance(value, Histogram):
            found[name] = {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        else:
            assert isinstance(value, Gauge)
            found[name] = {name}
    return found


def expressions(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if v.get("type") == "query"]
    return exprs


def test_dashboard_is_importable_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"]
    assert dashboard["uid"]
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_queried_metric_exists_and_every_metric_is_shown() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    defined = defined_metrics()
    assert len(defined) >= 10
    series = set().union(*defined.values())
    queried = {m for expr in expressions(dashboard) for m in re.findall(r"\bjobs_\w+", expr)}
    assert queried, "the dashboard queries jobs_* metrics"
    assert queried <= series, f"not in jobkit.metrics: {sorted(queried - series)}"
    shown = {name for name, names in defined.items() if names & queried}
    assert shown == set(defined), f"not on the dashboard: {sorted(set(defined) - shown)}"
