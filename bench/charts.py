"""``python -m bench.charts [bench-results/bench.json] [--out DIR]``: the benchmark's charts,
drawn from its results JSON (so they can be redrawn without rerunning; ``python -m bench``
calls ``draw_all`` at the end of a run):

- ``idle-latency-cdf.png``: the distribution of idle submit -> terminal seen, one job at a
  time, ours against each peer that ran, with p50 and p99 marked;
- ``throughput-vs-inflight.png``: jobs/s against submit calls in flight, from the coarse
  sweep (``bench.runner.SWEEP``: one run of a few hundred jobs per point);
- ``fairness.png``: from the fairness phase (``bench.fair``), a light user's time to first
  step alone and while a heavy user's backlog waits, with the fair dispatcher and with the
  single first-in first-out queue, every round's jobs pooled.

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
FAIR_FILE = "fairness.png"

OURS = "ours"
COLOURS = {OURS: "#1f77b4", "procrastinate": "#ff7f0e", "celery": "#2ca02c"}
OTHER_COLOUR = "#9467bd"
#: The fairness chart's curves: the fair dispatcher's like ours elsewhere, the single
#: queue's like a peer's.
FAIR_COLOUR, FIFO_COLOUR = COLOURS[OURS], COLOURS["procrastinate"]


class _Percentiles:
    """The p50 and p99 of a series' ``samples_ms``."""

    __slots__ = ()
    samples_ms: tuple[float, ...]

    @property
    def p50(self) -> float:
        return percentile(self.samples_ms, 50)

    @property
    def p99(self) -> float:
        return percentile(self.samples_ms, 99)


@dataclass(frozen=True, slots=True)
class LatencySeries(_Percentiles):
    """One system's idle latencies, every run's samples pooled."""

    name: str
    samples_ms: tuple[float, ...]


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


@dataclass(frozen=True, slots=True)
class FairSeries(_Percentiles):
    """The light user's times to first step in one situation, every round pooled."""

    label: str
    colour: str
    dashed: bool
    samples_ms: tuple[float, ...]


def _fair_samples(rounds: Sequence[Mapping[str, Any]], mode: str, situation: str) -> list[float]:
    out: list[float] = []
    for r in rounds:
        if r.get("mode") == mode:
            samples = (r.get(situation) or {}).get("seen_ms_samples") or []
            out += [float(x) for x in samples if isinstance(x, int | float)]
    return out


def _fair_rounds(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The fairness phase's rounds, each stack's a row (``bench.fair``)."""
    return [r for r in data.get("fair") or [] if isinstance(r, dict)]


def fair_series(data: Mapping[str, Any]) -> list[FairSeries]:
    """The light user alone (fair), under the flood with the fair dispatcher, and under the
    flood with the single queue; those without samples left out."""
    rounds = _fair_rounds(data)
    series = [
        FairSeries(
            "alone (fair dispatcher)",
            FAIR_COLOUR,
            True,
            tuple(_fair_samples(rounds, "fair", "idle_first_step")),
        ),
        FairSeries(
            "while the heavy user's backlog waits: fair dispatcher",
            FAIR_COLOUR,
            False,
            tuple(_fair_samples(rounds, "fair", "flood")),
        ),
        FairSeries(
            "while the heavy user's backlog waits: one FIFO queue",
            FIFO_COLOUR,
            False,
            tuple(_fair_samples(rounds, "fifo", "flood")),
        ),
    ]
    return [s for s in series if s.samples_ms]


def _label(data: Mapping[str, Any], name: str) -> str:
    if name == OURS:
        return "ours (durable-jobs)"
    peer = (data.get("peers") or {}).get(name) or {}
    return str(peer.get("label") or name)


def subtitle(data: Mapping[str, Any], *, peers: bool = True) -> str:
    """The date, the machine and the durable settings the figures were taken with
    (``peers``: and that each peer had servers of its own)."""
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
        f"JetStream sync {nats}" + ("; each peer on durable servers of its own" if peers else "")
    )


def _colour(name: str) -> str:
    return COLOURS.get(name, OTHER_COLOUR)


def _figure() -> tuple[Any, Any]:
    """A figure and its axes, both charts' size, drawn without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(9, 5.6), dpi=100)


def _log_ms_axis(ax: Any, subs: tuple[float, ...]) -> None:
    """A log x-axis of milliseconds, with a tick at each of ``subs`` in every decade."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt
    from PIL import Image

    fig.savefig(path)
    plt.close(fig)
    # A palette of a few dozen colours, as for waterfall.png: a fraction of the bytes.
    Image.open(path).convert("RGB").quantize(48, Image.Quantize.MEDIANCUT).save(path, optimize=True)


def _step_cdf(
    ax: Any, samples: Sequence[float], colour: str, label: str, linestyle: str = "-"
) -> None:
    """A distribution as a step CDF (``cdf``)."""
    xs, ys = cdf(samples)
    ax.step(xs, ys, where="post", color=colour, linewidth=1.8, linestyle=linestyle, label=label)


def _mark(
    ax: Any,
    q: float,
    value: float,
    colour: str,
    marker: str,
    text: str,
    offset: tuple[int, int],
    ha: str = "left",
) -> None:
    """A percentile on its CDF: a marker at (``value``, ``q``), ``text`` beside it."""
    ax.plot([value], [q], marker=marker, color=colour, markersize=6, linestyle="none")
    ax.annotate(
        text,
        (value, q),
        textcoords="offset points",
        xytext=offset,
        ha=ha,
        fontsize=8,
        color=colour,
    )


def cdf_x_range(series: Sequence[LatencySeries]) -> tuple[float, float]:
    """The idle CDFs' x range: every system's fastest job to twice the slowest p99, so that
    one job stalled for seconds does not squeeze every curve into a corner (the legend
    says how many lie past the axis)."""
    fastest = min(min(s.samples_ms) for s in series)
    return 0.9 * fastest, 2.0 * max(s.p99 for s in series)


def draw_cdf(data: Mapping[str, Any], path: Path) -> bool:
    """The idle-latency CDFs; False (and no file) when no system has samples."""
    series = latency_series(data)
    if not series:
        return False
    fig, ax = _figure()
    low, high = cdf_x_range(series)
    for i, s in enumerate(series):
        colour = _colour(s.name)
        beyond = sum(1 for x in s.samples_ms if x > high)
        _step_cdf(
            ax,
            s.samples_ms,
            colour,
            f"{_label(data, s.name)}: p50 {s.p50:.1f} ms, p99 {s.p99:.1f} ms "
            f"({len(s.samples_ms)} jobs"
            + (f"; {beyond} past the axis, up to {max(s.samples_ms):,.0f} ms)" if beyond else ")"),
        )
        for q, value, marker in ((0.5, s.p50, "o"), (0.99, s.p99, "D")):
            # One line lower for each system, so that close percentiles do not overprint.
            _mark(ax, q, value, colour, marker, f"p{round(q * 100)} {value:.1f}", (6, -12 - 10 * i))
    ax.set_xlim(low, high)
    ax.axhline(0.5, color="#999999", linewidth=0.6, linestyle=":")
    ax.axhline(0.99, color="#999999", linewidth=0.6, linestyle=":")
    _log_ms_axis(ax, (1.0, 1.5, 2.0, 3.0, 5.0, 7.0))
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


def common_case_ratio(data: Mapping[str, Any]) -> float | None:
    """The fair stack's median jobs/s in the common case (one user, nobody flooding) over
    the single queue's; ``None`` unless both ran it."""
    by_mode: dict[str, list[float]] = {}
    for r in _fair_rounds(data):
        rate = (r.get("throughput") or {}).get("jobs_per_s")
        if isinstance(rate, int | float):
            by_mode.setdefault(str(r.get("mode")), []).append(float(rate))
    if not by_mode.get("fair") or not by_mode.get("fifo"):
        return None
    return statistics.median(by_mode["fair"]) / statistics.median(by_mode["fifo"])


def draw_fair(data: Mapping[str, Any], path: Path) -> bool:
    """The light user's times to first step; False (and no file) when the phase did not run."""
    series = fair_series(data)
    if not series:
        return False
    fig, ax = _figure()
    for s in series:
        _step_cdf(
            ax,
            s.samples_ms,
            s.colour,
            f"{s.label}: p50 {s.p50:,.1f} ms, p99 {s.p99:,.1f} ms ({len(s.samples_ms)} jobs)",
            linestyle="--" if s.dashed else "-",
        )
        _mark(ax, 0.99, s.p99, s.colour, "D", f"p99 {s.p99:,.0f}", (-8, -12), ha="right")
    ax.axhline(0.99, color="#999999", linewidth=0.6, linestyle=":")
    common = common_case_ratio(data)
    if common is not None:
        ax.text(
            0.98,
            0.04,
            f"and when nobody floods, the fair dispatcher's throughput is {common:.2f} of the "
            "single queue's",
            transform=ax.transAxes,
            ha="right",
            fontsize=8,
            color="#444444",
        )
    _log_ms_axis(ax, (1.0, 3.0))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("CreateJob's return -> the job's first STEP_STARTED on its own stream, ms (log)")
    ax.set_ylabel("fraction of the light user's jobs")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="center", fontsize=8)
    rounds = _fair_rounds(data)
    flood = next((r.get("flood") or {} for r in rounds if r.get("flood")), {})
    heavy, light = (f"{flood[k]:,}" if k in flood else "?" for k in ("heavy_jobs", "light_jobs"))
    slots = next((r.get("worker_slots") for r in rounds if r.get("worker_slots")), "?")
    ax.set_title(
        f"A light user's jobs ({light} a round) while a heavy user's {heavy} wait for "
        f"{slots} worker slots (further left is faster)\n" + subtitle(data, peers=False),
        fontsize=9,
    )
    fig.tight_layout()
    _save(fig, path)
    return True


def _sweep_runs(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    runs = (data.get("runs") or {}).get("sweep") or []
    return [p for p in runs if isinstance(p, dict)]


def draw_all(data: Mapping[str, Any], out: Path) -> list[Path]:
    """Every chart into ``out``; the paths of those drawn (a chart whose phase did not run
    is not drawn)."""
    out.mkdir(parents=True, exist_ok=True)
    drawn = []
    for draw, name in ((draw_cdf, CDF_FILE), (draw_sweep, SWEEP_FILE), (draw_fair, FAIR_FILE)):
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
        sys.stdout.write(
            "no chart: the JSON has no idle-latency samples, sweep or fairness phase\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
