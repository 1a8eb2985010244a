"""``python -m bench.charts [bench-results/bench.json] [--out DIR]``: the benchmark's charts,
drawn from its results JSON (so they can be redrawn without rerunning; ``python -m bench``
calls ``draw_all`` at the end of a run):

- ``idle-latency-cdf.png``: the distribution of idle submit -> terminal seen, one job at a
  time, ours against each peer that ran, with p50 and p99 marked;
- ``throughput-vs-inflight.png``: jobs/s against submit calls in flight, from the coarse
  sweep (``bench.runner.SWEEP``: one run of a few hundred jobs per point).

Headless (matplotlib's Agg backend), reduced to a small palette like ``waterfall.png``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .stats import percentile

CDF_FILE = "idle-latency-cdf.png"
SWEEP_FILE = "throughput-vs-inflight.png"

OURS = "ours"
COLOURS = {OURS: "#1f77b4", "procrastinate": "#ff7f0e", "celery": "#2ca02c"}
OTHER_COLOUR = "#9467bd"


@dataclass(frozen=True, slots=True)
class LatencySeries:
    """One system's idle latencies, every run's samples pooled."""

    name: str
    samples_ms: tuple[float, ...]

    @property
    def p50(self) -> float:
        return percentile(self.samples_ms, 50)

    @property
    def p99(self) -> float:
        return percentile(self.samples_ms, 99)


@dataclass(frozen=True, slots=True)
class SweepSeries:
    """One system's throughput at each number in flight (the median if run more than once)."""

    name: str
    points: tuple[tuple[int, float], ...]


def _samples(runs: object) -> tuple[float, ...]:
    out: list[float] = []
    for run in runs if isinstance(runs, list) else []:
        for x in run.get("samples_ms") or [] if isinstance(run, dict) else []:
            if isinstance(x, int | float):
                out.append(float(x))
    return tuple(out)


def _peers(data: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    peers = data.get("peers") or {}
    return [(n, p) for n, p in peers.items() if isinstance(p, dict) and not p.get("skipped")]


def latency_series(data: Mapping[str, Any]) -> list[LatencySeries]:
    """Ours, then each peer that ran, with the idle-latency samples they have."""
    series = [LatencySeries(OURS, _samples((data.get("runs") or {}).get("idle_latency")))]
    series += [LatencySeries(n, _samples(p.get("idle_latency"))) for n, p in _peers(data)]
    return [s for s in series if s.samples_ms]


def cdf(samples: Sequence[float]) -> tuple[list[float], list[float]]:
    """A step CDF: x the sorted samples, y the fraction of jobs at or below; it starts at 0
    (at the smallest sample) and ends at 1."""
    xs = sorted(samples)
    if not xs:
        return [], []
    n = len(xs)
    return [xs[0], *xs], [0.0, *((i + 1) / n for i in range(n))]


def _points(runs: object) -> tuple[tuple[int, float], ...]:
    by_n: dict[int, list[float]] = {}
    for point in runs if isinstance(runs, list) else []:
        if isinstance(point, dict) and point.get("jobs_per_s") is not None:
            by_n.setdefault(int(point["in_flight"]), []).append(float(point["jobs_per_s"]))
    return tuple((n, statistics.median(v)) for n, v in sorted(by_n.items()))


def sweep_series(data: Mapping[str, Any]) -> list[SweepSeries]:
    """Ours, then each peer that ran the sweep."""
    series = [SweepSeries(OURS, _points((data.get("runs") or {}).get("sweep")))]
    series += [SweepSeries(n, _points(p.get("sweep"))) for n, p in _peers(data)]
    return [s for s in series if s.points]


def _label(data: Mapping[str, Any], name: str) -> str:
    if name == OURS:
        return "ours (durable-jobs)"
    peer = (data.get("peers") or {}).get(name) or {}
    return str(peer.get("label") or name)


def subtitle(data: Mapping[str, Any]) -> str:
    """The date, the machine and the durable settings the figures were taken with."""
    meta = data.get("meta") or {}
    date = str(meta.get("started_at") or "")[:10] or "date unknown"
    cpus = meta.get("cpus") or "?"
    model = str(meta.get("cpu_model") or "").strip()
    sync = meta.get("postgres_synchronous_commit") or "?"
    fsync = meta.get("postgres_fsync") or "?"
    nats = meta.get("nats_sync_interval") or "?"
    machine = f"{cpus} CPUs" + (f" ({model})" if model else "")
    return (
        f"{date}, {machine}\ndurable: Postgres synchronous_commit={sync}, fsync={fsync}; "
        f"JetStream sync {nats}; each peer on durable servers of its own"
    )


def _colour(name: str) -> str:
    return COLOURS.get(name, OTHER_COLOUR)


def _figure() -> tuple[Any, Any]:
    """A figure and its axes, both charts' size, drawn without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(9, 5.6), dpi=100)


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt
    from PIL import Image

    fig.savefig(path)
    plt.close(fig)
    # A palette of a few dozen colours, as for waterfall.png: a fraction of the bytes.
    Image.open(path).convert("RGB").quantize(48, Image.Quantize.MEDIANCUT).save(path, optimize=True)


def draw_cdf(data: Mapping[str, Any], path: Path) -> bool:
    """The idle-latency CDFs; False (and no file) when no system has samples."""
    series = latency_series(data)
    if not series:
        return False
    fig, ax = _figure()
    for s in series:
        xs, ys = cdf(s.samples_ms)
        colour = _colour(s.name)
        ax.step(
            xs,
            ys,
            where="post",
            color=colour,
            linewidth=1.8,
            label=f"{_label(data, s.name)}: p50 {s.p50:.1f} ms, p99 {s.p99:.1f} ms "
            f"({len(s.samples_ms)} jobs)",
        )
        for q, value, marker in ((0.5, s.p50, "o"), (0.99, s.p99, "D")):
            ax.plot([value], [q], marker=marker, color=colour, markersize=6, linestyle="none")
            ax.annotate(
                f"p{round(q * 100)} {value:.1f}",
                (value, q),
                textcoords="offset points",
                xytext=(6, -12 if q == 0.5 else 4),
                fontsize=8,
                color=colour,
            )
    ax.axhline(0.5, color="#999999", linewidth=0.6, linestyle=":")
    ax.axhline(0.99, color="#999999", linewidth=0.6, linestyle=":")
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("submit -> terminal seen by the client, ms (log scale)")
    ax.set_ylabel("fraction of jobs")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(
        "Idle latency, one 3-step noop job at a time (further left is faster)\n" + subtitle(data),
        fontsize=9,
    )
    fig.tight_layout()
    _save(fig, path)
    return True


def draw_sweep(data: Mapping[str, Any], path: Path) -> bool:
    """Throughput against calls in flight; False (and no file) when the sweep did not run."""
    series = sweep_series(data)
    if not series:
        return False
    fig, ax = _figure()
    for s in series:
        xs = [n for n, _ in s.points]
        ys = [v for _, v in s.points]
        colour = _colour(s.name)
        ax.plot(xs, ys, marker="o", color=colour, linewidth=1.8, label=_label(data, s.name))
        for x, y in s.points:
            ax.annotate(
                f"{y:,.0f}",
                (x, y),
                textcoords="offset points",
                xytext=(0, 7),
                ha="center",
                fontsize=8,
                color=colour,
            )
    every = sorted({n for s in series for n, _ in s.points})
    ax.set_xscale("log", base=2)
    ax.set_xticks(every, [str(n) for n in every])
    ax.set_ylim(0, max(v for s in series for _, v in s.points) * 1.15)
    ax.set_xlabel("submit calls in flight (CreateJob for ours; jobs queue behind them)")
    ax.set_ylabel("jobs/s (3-step noop, submit -> all terminal)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    if len(series) == 1:
        who = "ours alone: no peer ran the sweep"
    else:
        who = "peers up to their client's size"
    jobs = max((int(p.get("jobs", 0)) for p in _sweep_runs(data)), default=0)
    ax.set_title(
        f"Throughput vs. in flight: a coarse sweep, one run of {jobs} jobs per point "
        f"({who})\n" + subtitle(data),
        fontsize=9,
    )
    fig.tight_layout()
    _save(fig, path)
    return True


def _sweep_runs(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    runs = (data.get("runs") or {}).get("sweep") or []
    return [p for p in runs if isinstance(p, dict)]


def draw_all(data: Mapping[str, Any], out: Path) -> list[Path]:
    """Both charts into ``out``; the paths of those drawn (a chart whose phase did not run
    is not drawn)."""
    out.mkdir(parents=True, exist_ok=True)
    drawn = []
    for draw, name in ((draw_cdf, CDF_FILE), (draw_sweep, SWEEP_FILE)):
        if draw(data, out / name):
            drawn.append(out / name)
    return drawn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.charts", description="Redraw the charts from a bench.json."
    )
    parser.add_argument("json", type=Path, nargs="?", default=Path("bench-results/bench.json"))
    parser.add_argument("--out", type=Path, help="folder for the PNGs (the JSON's)")
    args = parser.parse_args(argv)
    data = json.loads(args.json.read_text())
    drawn = draw_all(data, args.out or args.json.parent)
    for path in drawn:
        sys.stdout.write(f"{path} ({path.stat().st_size / 1024:.0f} KB)\n")
    if not drawn:
        sys.stdout.write("no chart: the JSON has neither idle-latency samples nor a sweep\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
