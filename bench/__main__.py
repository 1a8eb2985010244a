"""``python -m bench [--jobs N] [--runs R] [--out bench-results/bench.json] [--quick]``

Starts Postgres, NATS and the four services (the dev stack, durable settings, per-user
limits off), measures, prints a table and writes JSON. Then, with the stack stopped, runs
the same throughput, sweep and idle-latency measurements on the peers (``--peer``; every one
in a full run) and reports the ratios; then draws the charts (``bench.charts``). Exits 0
whether or not the targets are met: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import uvloop

from .charts import draw_all
from .peers import PEERS
from .report import render, to_json
from .runner import PHASES, Config, Progress, run

#: (full, quick) defaults: --quick is a smoke run of the same phases in about a minute.
DEFAULTS = {
    "jobs": (2000, 300),
    "runs": (3, 2),
    "concurrency": (48, 32),
    "latency_probes": (200, 40),
    "watchers": (2000, 300),
    "event_window_s": (10.0, 3.0),
    "floor_s": (3.0, 1.0),
    "warmup_jobs": (300, 100),
    "quiet_timeout": (120.0, 15.0),
    "running_jobs": (1000, 200),
    "bulk_rows": (100_000, 5_000),
}


def parse(argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Throughput, latency, event latency, floors and resources of the stack.",
    )
    parser.add_argument("--jobs", type=int, help="jobs per throughput run (2000; 5000 is fine)")
    parser.add_argument("--runs", type=int, help="runs of every measurement (3)")
    parser.add_argument("--out", type=Path, default=Path("bench-results/bench.json"))
    parser.add_argument("--quick", action="store_true", help="small numbers: a smoke run")
    parser.add_argument("--concurrency", type=int, help="CreateJob calls in flight (48)")
    parser.add_argument("--latency-probes", type=int, help="jobs per latency run (200)")
    parser.add_argument(
        "--watchers", type=int, help="concurrent WatchJob (and gateway SSE) streams (2000)"
    )
    parser.add_argument(
        "--running-jobs",
        type=int,
        help="jobs running at once, each watched by its own stream, in the running phase (1000)",
    )
    parser.add_argument("--event-window", type=float, dest="event_window_s", help="seconds")
    parser.add_argument("--floor-seconds", type=float, dest="floor_s", help="seconds per floor")
    parser.add_argument("--warmup-jobs", type=int, help="unreported jobs before throughput")
    parser.add_argument("--event-sleep-ms", type=int, default=100, help="noop sleep per step")
    parser.add_argument("--api-channels", type=int, default=4, help="connections to job_api")
    parser.add_argument("--notifier-channels", type=int, default=16, help="to the notifier")
    parser.add_argument("--dir", type=Path, help="keep the stack's data and logs here")
    parser.add_argument("--profile", type=Path, help="py-spy the services into this folder")
    parser.add_argument(
        "--replicas", type=int, default=1, help="orchestrator and ai_worker processes each (1)"
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated phases to run, of: {', '.join(PHASES)} (all)",
    )
    parser.add_argument(
        "--peer",
        help=f"comma-separated peers to compare with, of: {', '.join(PEERS)}; 'none' for "
        "none (all of them in a full run or with --only peer, else none). A peer runs what "
        "ours runs of throughput, the sweep (up to --concurrency in flight) and idle "
        "latency; --only peer runs throughput and idle latency, ours and theirs",
    )
    parser.add_argument("--peer-workers", type=int, default=2, help="worker processes per peer (2)")
    parser.add_argument(
        "--peer-concurrency", type=int, default=16, help="jobs at once per peer worker (16)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat the whole sequence this many times, ours then the peers' each round, and "
        "pool the runs: a machine whose speed drifts then moves both sides alike (1)",
    )
    parser.add_argument(
        "--max-foreign-pct",
        type=float,
        default=10.0,
        help="start a run once other processes use at most this %% of the machine (10)",
    )
    parser.add_argument(
        "--quiet-timeout", type=float, help="seconds to wait for that before measuring anyway"
    )
    parser.add_argument(
        "--bulk-rows", type=int, help="rows the bulk phase exports and imports (100000)"
    )
    args = parser.parse_args(argv)
    pick = 1 if args.quick else 0
    values = {
        k: getattr(args, k) if getattr(args, k) is not None else d[pick]
        for k, d in DEFAULTS.items()
    }
    if (
        min(
            values["jobs"],
            values["runs"],
            values["watchers"],
            values["running_jobs"],
            values["bulk_rows"],
        )
        < 1
    ):
        parser.error("--jobs, --runs, --watchers, --running-jobs and --bulk-rows must be positive")
    if args.replicas < 1:
        parser.error("--replicas must be positive")
    if args.rounds < 1:
        parser.error("--rounds must be positive")
    only = frozenset(p.strip() for p in args.only.split(",") if p.strip())
    if unknown := only - set(PHASES):
        parser.error(f"unknown phase(s) for --only: {', '.join(sorted(unknown))}")
    peers = _peers(parser, args.peer, only)
    if args.peer_workers < 1 or args.peer_concurrency < 1:
        parser.error("--peer-workers and --peer-concurrency must be positive")
    return Config(
        jobs=int(values["jobs"]),
        runs=int(values["runs"]),
        concurrency=int(values["concurrency"]),
        api_channels=args.api_channels,
        notifier_channels=args.notifier_channels,
        latency_probes=int(values["latency_probes"]),
        watchers=int(values["watchers"]),
        event_sleep_ms=args.event_sleep_ms,
        event_window_s=float(values["event_window_s"]),
        floor_s=float(values["floor_s"]),
        warmup_jobs=int(values["warmup_jobs"]),
        out=args.out,
        quick=args.quick,
        rounds=args.rounds,
        dir=args.dir,
        profile=args.profile,
        max_foreign_pct=args.max_foreign_pct,
        quiet_timeout_s=float(values["quiet_timeout"]),
        replicas=args.replicas,
        only=only,
        peers=peers,
        peer_workers=args.peer_workers,
        peer_concurrency=args.peer_concurrency,
        running_jobs=int(values["running_jobs"]),
        bulk_rows=int(values["bulk_rows"]),
    )


def _peers(
    parser: argparse.ArgumentParser, given: str | None, only: frozenset[str]
) -> tuple[str, ...]:
    """The peers to run: those named, in ``PEERS`` order; by default all of them in a full
    run or with ``--only peer``, else none. A peer needs ours to run throughput or idle
    latency (or ``peer``, which runs both), or there is nothing to compare."""
    if given is None:
        return PEERS if not only or "peer" in only else ()
    names = {p.strip() for p in given.split(",") if p.strip()}
    if names == {"none"}:
        if "peer" in only:
            parser.error("--only peer needs a peer")
        return ()
    if unknown := names - set(PEERS):
        parser.error(f"unknown peer(s): {', '.join(sorted(unknown))}; of: {', '.join(PEERS)}")
    if only and not only & {"throughput", "sweep", "idle", "loaded", "peer"}:
        parser.error(
            "--peer compares throughput, the sweep and idle latency: add one, or peer, to --only"
        )
    return tuple(p for p in PEERS if p in names)


def _clean(value: object) -> object:
    """JSON without NaN or infinities (not JSON), which become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    config = parse(argv)
    say = Progress()
    results = uvloop.run(run(config, say))
    config.out.parent.mkdir(parents=True, exist_ok=True)
    data = _clean(to_json(results))
    config.out.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    sys.stdout.write(render(results) + "\n\n")
    sys.stdout.write(f"JSON: {config.out.resolve()}\n")
    assert isinstance(data, dict)
    try:  # the same code as ``python -m bench.charts``, from the JSON just written
        for path in draw_all(data, config.out.parent):
            sys.stdout.write(f"chart: {path.resolve()}\n")
    except Exception as error:  # a chart is not worth losing the run's exit status over
        sys.stdout.write(f"charts failed: {error!r}; redraw: python -m bench.charts {config.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
