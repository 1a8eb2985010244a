"""Liveness for services without a gRPC server (orchestrator, ai_worker).

The service touches a heartbeat file while its loops are healthy (``beat_forever``); the
Kubernetes exec probe runs ``python -m jobkit.probe`` which fails when the file is older
than ``max_age_s``. A hung event loop stops the beats, so the probe catches what a mere
"process exists" check cannot.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

DEFAULT_HEALTH_FILE = "/tmp/healthy"  # noqa: S108 - an emptyDir in the pod
DEFAULT_MAX_AGE_S = 30.0


async def beat_forever(path: Path, healthy: Callable[[], bool], interval_s: float = 5.0) -> None:
    """Touch ``path`` every ``interval_s`` while ``healthy()``; remove it on the way out."""
    try:
        while True:
            if healthy():
                path.touch()  # noqa: ASYNC240 - a metadata write to a local tmpfs
            await asyncio.sleep(interval_s)
    finally:
        path.unlink(missing_ok=True)  # noqa: ASYNC240 - as above


def check(path: Path, max_age_s: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime <= max_age_s
    except FileNotFoundError:
        return False


def main() -> int:
    path = Path(os.environ.get("HEALTH_FILE", DEFAULT_HEALTH_FILE))
    max_age_s = float(os.environ.get("HEALTH_MAX_AGE_S", DEFAULT_MAX_AGE_S))
    ok = check(path, max_age_s)
    if not ok:
        print(f"unhealthy: {path} missing or older than {max_age_s:g}s", file=sys.stderr)  # noqa: T201
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
