"""Artifact throughput: how fast a step's file reaches its owner, through each way out,
against reading it straight from the object store.

A stack of its own (``<root>/artifacts``) with SeaweedFS beside it. One ``noop`` job with
``artifact_bytes`` of ``SIZE_MIB`` MiB has its last step stream that many bytes to the store
(the worker's write: the step's span from its start event to the job's end). Then, ``runs``
times each, the same artifact is read whole and hashed four ways, in this process:

- *direct*: from the store itself (``jobkit.artifacts``, obstore), the floor;
- *gRPC*: ``DownloadArtifact`` on job_api (its ownership check, its read of the store);
- *gateway*: ``GET /v1/jobs/{id}/artifacts/{name}``, HTTP/1.1 through the gateway, which
  makes the same call, read with the bench's own small HTTP/1.1 client (``bench.http1``);
- *jobctl*: not timed here: it is the gRPC path and a file write.

The worker's RSS is sampled through the job: a streamed write should not grow it by the
artifact's size. The figure against the target is gateway / direct (≥ 0.7).
"""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from devstack import Stack
from jobctl.client import JobsClient
from jobkit.artifacts import ObjectStoreSettings, job_prefix
from jobkit.convert import struct_to_dict
from jobkit.gen.jobs.v1 import jobs_pb2

from .harness import BENCH_ENV
from .http1 import Connection
from .procs import MIB, RssSampler, Watched
from .tables import table

if TYPE_CHECKING:
    from .runner import Config

#: The artifact's size.
SIZE_MIB = 128
#: Reads of each kind.
READS = 3
#: The bench's user.
OWNER = "bench-artifacts"


@dataclass
class ArtifactRun:
    size: int
    #: The last step's time (its STEP_STARTED to the job's SUCCEEDED), s.
    write_s: float = float("nan")
    #: Seconds per whole read, by way.
    reads: dict[str, list[float]] = field(default_factory=dict)
    worker_rss_before: int = 0
    worker_rss_peak: int = 0
    errors: list[str] = field(default_factory=list)

    def mib_per_s(self, way: str) -> float:
        times = self.reads.get(way) or []
        return self.size / MIB / statistics.median(times) if times else float("nan")

    @property
    def write_mib_per_s(self) -> float:
        return self.size / MIB / self.write_s

    def ratio(self, way: str) -> float:
        return self.mib_per_s(way) / self.mib_per_s("direct")

    def as_json(self) -> dict[str, object]:
        return {
            "size_bytes": self.size,
            "write_s": self.write_s,
            "write_mib_per_s": self.write_mib_per_s,
            "reads_s": self.reads,
            "read_mib_per_s": {way: self.mib_per_s(way) for way in self.reads},
            "gateway_over_direct": self.ratio("gateway"),
            "grpc_over_direct": self.ratio("grpc"),
            "worker_rss_before_bytes": self.worker_rss_before,
            "worker_rss_peak_bytes": self.worker_rss_peak,
            "errors": self.errors,
        }


async def _timed_read(pieces: AsyncIterator[bytes], sha256: str) -> float:
    began = time.perf_counter()
    hasher = hashlib.sha256()
    async for piece in pieces:
        hasher.update(piece)
    took = time.perf_counter() - began
    if hasher.hexdigest() != sha256:
        raise AssertionError("the bytes read do not match the artifact")
    return took


async def run_artifacts(config: Config, root: Path, say: Callable[[str], None]) -> ArtifactRun:
    size = SIZE_MIB * MIB
    run = ArtifactRun(size)
    stack = Stack(root / "artifacts", extra_env=BENCH_ENV, with_object_store=True)
    say("artifacts: starting a stack of its own with SeaweedFS")
    await asyncio.to_thread(stack.start)
    try:
        rss = RssSampler([Watched("ai_worker", stack.services["ai_worker"].pid)])
        sampler = asyncio.create_task(rss.run())
        token = stack.token(OWNER)
        async with JobsClient(stack.job_api_addr, stack.notifier_addr, token) as client:
            await asyncio.sleep(1.0)
            run.worker_rss_before = rss.peak("ai_worker")
            job = await client.create_job("noop", {"artifact_bytes": size})
            last_started = began = time.monotonic()
            async for event in client.watch(job.job_id):
                if event.type == jobs_pb2.JOB_EVENT_TYPE_STEP_STARTED:
                    last_started = time.monotonic()
                if event.type == jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED:
                    run.write_s = time.monotonic() - last_started
                    break
                if event.type in (
                    jobs_pb2.JOB_EVENT_TYPE_FAILED,
                    jobs_pb2.JOB_EVENT_TYPE_CANCELLED,
                ):
                    run.errors.append(f"the job ended {jobs_pb2.JobEventType.Name(event.type)}")
                    return run
            run.worker_rss_peak = rss.peak("ai_worker", since=began)
            sampler.cancel()
            say(f"artifacts: {SIZE_MIB} MiB written by the step in {run.write_s:.2f}s")
            finished = await client.get_job(job.job_id)
            sha256 = str(struct_to_dict(finished.result)["artifacts"][0]["sha256"])
            assert stack.object_store is not None
            settings = ObjectStoreSettings.from_env(stack.object_store.env())
            assert settings is not None
            store = settings.open()
            prefix = job_prefix(OWNER, job.job_id)
            path = f"/v1/jobs/{job.job_id}/artifacts/noop.bin"

            async def gateway() -> AsyncIterator[bytes]:
                # A plain HTTP/1.1 reader (bench.http1), so that what is timed is the
                # gateway, not a general-purpose client's parsing of 128 MiB.
                connection = await Connection.open(stack.gateway_url)
                try:
                    await connection.send(
                        "GET", path, {"Authorization": f"Bearer {token}", "Connection": "close"}
                    )
                    head = await connection.head()
                    if head.status != 200:
                        raise AssertionError(f"the gateway answered {head.status}")
                    async for piece in connection.sized(head):
                        yield piece
                finally:
                    connection.close()

            async def grpc() -> AsyncIterator[bytes]:
                _, pieces = await client.download(job.job_id, "noop.bin")
                async for piece in pieces:
                    yield piece

            ways: dict[str, Callable[[], AsyncIterator[bytes]]] = {
                "direct": lambda: store.read(prefix, sha256),
                "grpc": grpc,
                "gateway": gateway,
            }
            for n in range(READS):
                for way, read in ways.items():
                    took = await _timed_read(read(), sha256)
                    run.reads.setdefault(way, []).append(took)
                say(
                    f"artifacts read {n + 1}/{READS}: "
                    + ", ".join(f"{w} {size / MIB / run.reads[w][-1]:,.0f} MiB/s" for w in ways)
                )
    except Exception as error:
        run.errors.append(repr(error))
        say(f"artifacts failed: {error!r}")
    finally:
        await asyncio.to_thread(stack.stop)
    return run


def lines(run: ArtifactRun | None) -> list[str]:
    if run is None:
        return []
    out = [
        "",
        f"artifacts ({run.size // MIB} MiB, one noop job's last step streams it to SeaweedFS; "
        f"then read whole and hashed in this process, {READS} times each, median; the "
        "worker's RSS sampled through the write):",
    ]
    ways = list(run.reads)
    out += table(
        ["way", "MiB/s", "of direct"],
        [
            ["step write (worker -> store)", f"{run.write_mib_per_s:,.0f}", ""],
            *[[w, f"{run.mib_per_s(w):,.0f}", f"{run.ratio(w):.2f}"] for w in ways],
        ],
        "<>>",
    )
    out.append(
        f"worker RSS before the job {run.worker_rss_before / MIB:.0f} MiB, peak while writing "
        f"{run.worker_rss_peak / MIB:.0f} MiB" + (f"; errors: {run.errors}" if run.errors else "")
    )
    return out
