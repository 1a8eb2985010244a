"""jobctl: submit, watch and manage jobs from a shell.

Exit codes: 0 success; 1 the watched job FAILED or was CANCELLED; 2 bad usage or invalid
argument; 3 not found; 4 authentication or permission; 5 service unavailable; 6 conflict
or precondition; 7 rate limited; 10 anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from jobctl.client import JobsClient, field_violations
from jobctl.http_client import GatewayError, HttpJobsClient
from jobctl.progress import JobProgress
from jobctl.transport import BulkFilter, Scheduling
from jobctl.waiting import (
    NothingWaiting,
    answer_hint,
    only_waiting_step,
    read_answer,
    waiting_steps,
)
from jobkit.auth import mint_token
from jobkit.gen.jobs.v1 import jobs_pb2

EXIT_JOB_UNSUCCESSFUL = 1
EXIT_USAGE = 2
EXIT_PRECONDITION = 6
_EXIT_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: 2,
    grpc.StatusCode.NOT_FOUND: 3,
    grpc.StatusCode.UNAUTHENTICATED: 4,
    grpc.StatusCode.PERMISSION_DENIED: 4,
    grpc.StatusCode.UNAVAILABLE: 5,
    grpc.StatusCode.DEADLINE_EXCEEDED: 5,
    grpc.StatusCode.ALREADY_EXISTS: EXIT_PRECONDITION,
    grpc.StatusCode.FAILED_PRECONDITION: EXIT_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 7,
}
#: The same calls over gRPC or over the HTTP gateway (``--http``).
Jobs = JobsClient | HttpJobsClient
_STATUS_NAMES = [n.removeprefix("JOB_STATUS_").lower() for n in jobs_pb2.JobStatus.keys()][1:]  # noqa: SIM118


def _to_json(message: Message) -> dict[str, Any]:
    tidied: dict[str, Any] = _whole_numbers(
        json_format.MessageToDict(message, preserving_proto_field_name=True)
    )
    return tidied


def _whole_numbers(value: Any) -> Any:
    """``value`` with whole floats as ints: a result's numbers travel as a Struct's doubles,
    and a count of rows reads better as 3 than as 3.0."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


def _read_input(raw: str | None, fields: Sequence[str]) -> dict[str, Any]:
    """Input from ``@file.json``, ``-`` (stdin) or inline JSON, plus ``--set key=value``."""
    doc: dict[str, Any] = {}
    if raw:
        loaded = json.loads(_read_text(raw))
        if not isinstance(loaded, dict):
            raise ValueError("the input must be a JSON object")
        doc = loaded
    for item in fields:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set takes key=value, got {item!r}")
        try:
            doc[key] = json.loads(value)
        except json.JSONDecodeError:
            doc[key] = value
    return doc


def _submission(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The job type and input of ``submit``: from TYPE and --input/--set, or a whole
    CreateJobRequest document (``--request``, as grpcurl takes it)."""
    if args.request:
        request = _read_input(args.request, [])
        job_type = args.type or request.get("type", "")
        doc = request.get("input", {})
        if not isinstance(doc, dict):
            raise ValueError("the request's input must be a JSON object")
        for key, value in _read_input(args.input, args.set or []).items():
            doc[key] = value
        return str(job_type), doc
    if not args.type:
        raise ValueError("submit needs a job TYPE (or --request)")
    return args.type, _read_input(args.input, args.set or [])


def _instant(text: str) -> datetime:
    """``--not-before``: an ISO 8601 time (UTC unless it says otherwise), or ``+SECONDS``."""
    if text.startswith("+"):
        return datetime.now(UTC) + timedelta(seconds=float(text[1:]))
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _status(value: int) -> str:
    return jobs_pb2.JobStatus.Name(value).removeprefix("JOB_STATUS_")


def _schedule(job: jobs_pb2.Job) -> str:
    """The rest of a job's scheduling, for its ``priority`` line."""
    parts = []
    if job.HasField("not_before"):
        parts.append(f"not before {job.not_before.ToDatetime(tzinfo=UTC):%Y-%m-%d %H:%M:%S} UTC")
    if job.HasField("deadline"):
        parts.append(f"deadline {job.deadline.ToTimedelta().total_seconds():g}s after creation")
    if job.concurrency_key:
        limit = f" (at most {job.concurrency_limit} at once)" if job.concurrency_limit else ""
        parts.append(f"key {job.concurrency_key}{limit}")
    return "".join(f"; {p}" for p in parts)


def _print_job(job: jobs_pb2.Job, output: str) -> None:
    if output == "json":
        print(json.dumps(_to_json(job), indent=2))
        return
    print(f"job      {job.job_id}")
    print(
        f"type     {job.type}" + (f" (version {job.type_version})" if job.type_version > 1 else "")
    )
    if job.parent_job_id:
        print(f"parent   {job.parent_job_id}  (jobctl get {job.parent_job_id})")
    if job.forked_from_job_id:
        print(f"forked   from {job.forked_from_job_id}  (jobctl get {job.forked_from_job_id})")
    print(f"priority {job.priority or 5}" + _schedule(job))
    if job.webhook_url:
        print(f"webhook  {job.webhook_url}  (jobctl webhooks {job.job_id})")
    print(f"status   {_status(job.status)}  {job.progress}%  {job.phase}")
    for step in job.steps:
        state = jobs_pb2.StepStatus.Name(step.status).removeprefix("STEP_STATUS_")
        error = f"  {step.error.code}: {step.error.message}" if step.error.code else ""
        print(f"  - {step.name:<20} {state:<13} attempt {step.attempt}{error}")
    if job.error.code:
        print(f"error    {job.error.code}: {job.error.message}")
    if job.HasField("result") and job.result.fields:
        print("result")
        print(json.dumps(_whole_numbers(json_format.MessageToDict(job.result)), indent=2))
    _print_waiting(job)


def _print_waiting(job: jobs_pb2.Job) -> None:
    """Each step waiting for input: what it asks, its draft, and the command that answers
    it (last, where a reader's eye ends)."""
    waiting = waiting_steps(job)
    for step in waiting:
        request = step.input_request
        print(f"waiting  {step.name} asks: {request.prompt or '(no prompt)'}")
        if request.HasField("expires_at"):
            until = request.expires_at.ToDatetime(tzinfo=UTC)
            print(f"         answer by {until:%Y-%m-%d %H:%M:%S} UTC")
        if request.HasField("draft") and request.draft.fields:
            print("draft")
            print(json.dumps(_whole_numbers(json_format.MessageToDict(request.draft)), indent=2))
        hint = answer_hint(job.job_id, step.name, request, name_step=len(waiting) > 1)
        print(f"answer   {hint}")


async def _watch(
    client: Jobs, job_id: str, after: int, output: str, job: jobs_pb2.Job | None = None
) -> int:
    """Follow a job to its end: JSON lines with ``-o json``, else a live display on a
    terminal (its steps listed from ``job``, or fetched) and plain lines elsewhere."""
    final = jobs_pb2.JOB_STATUS_UNSPECIFIED
    if output == "json":
        async for event in client.watch(job_id, after):
            print(json.dumps(_to_json(event)), flush=True)
            final = event.status
        return 0 if final == jobs_pb2.JOB_STATUS_SUCCEEDED else EXIT_JOB_UNSUCCESSFUL
    view = JobProgress(sys.stdout, job_id=job_id)
    if view.interactive:
        view.plan(job or await client.get_job(job_id), replay=after == 0)
    with view:
        async for event in client.watch(job_id, after):
            view.update(event)
            final = event.status
    return 0 if final == jobs_pb2.JOB_STATUS_SUCCEEDED else EXIT_JOB_UNSUCCESSFUL


async def _run(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("JOBS_TOKEN") or os.environ.get("TOKEN", "")
    if not token:
        print(
            "jobctl: no token: pass --token, or set JOBS_TOKEN (see `jobctl token`)",
            file=sys.stderr,
        )
        return 4
    client: Jobs
    if args.http:
        client = HttpJobsClient(args.http, token, timeout_s=args.timeout)
    else:
        client = JobsClient(args.api, args.notifier, token, timeout_s=args.timeout)
    async with client:
        if args.command == "submit":
            job_type, doc = _submission(args)
            scheduling = Scheduling(
                args.priority,
                args.not_before,
                args.deadline,
                args.concurrency_key,
                args.concurrency_limit,
            )
            job = await client.create_job(
                job_type,
                doc,
                idempotency_key=args.idempotency_key,
                scheduling=scheduling,
                webhook_url=args.webhook_url,
            )
            if args.watch:
                if args.output != "json":
                    print(f"job {job.job_id} ({job.type})", flush=True)
                code = await _watch(client, job.job_id, 0, args.output, job)
                if args.output != "json":
                    _print_job(await client.get_job(job.job_id), args.output)
                return code
            if args.output == "json":
                _print_job(job, "json")
            else:
                print(job.job_id)
            return 0
        if args.command == "watch":
            return await _watch(client, args.job_id, args.after, args.output)
        if args.command == "get":
            _print_job(await client.get_job(args.job_id), args.output)
            return 0
        if args.command == "list":
            page = await client.list_jobs(
                page_size=args.limit,
                page_token=args.page_token,
                status=(
                    f"JOB_STATUS_{args.status.upper()}"
                    if args.status
                    else jobs_pb2.JOB_STATUS_UNSPECIFIED
                ),
                job_type=args.type or "",
                parent_job_id=args.parent or "",
            )
            if args.output == "json":
                print(json.dumps(_to_json(page), indent=2))
                return 0
            print(f"{'JOB ID':<36}  {'TYPE':<14} {'STATUS':<13} {'PROGRESS':>8}  CREATED")
            for job in page.jobs:
                created = job.created_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")
                print(
                    f"{job.job_id:<36}  {job.type:<14} {_status(job.status):<13} "
                    f"{job.progress:>7}%  {created}"
                )
            if page.next_page_token:
                print(f"\nmore: jobctl list --page-token {page.next_page_token}")
            return 0
        if args.command in ("cancel", "retry"):
            method = client.cancel_job if args.command == "cancel" else client.retry_job
            _print_job(await method(args.job_id), args.output)
            return 0
        if args.command == "delete":
            await client.delete_job(args.job_id)
            if args.output == "json":
                print(json.dumps({"deleted": args.job_id}))
            else:
                print(f"deleted {args.job_id}")
            return 0
        if args.command == "fork":
            overrides = _read_input(
                f"@{args.input_overrides}"
                if args.input_overrides and args.input_overrides != "-"
                else args.input_overrides,
                args.set or [],
            )
            job = await client.fork_job(
                args.job_id, args.from_step, overrides, idempotency_key=args.idempotency_key
            )
            if args.watch:
                if args.output != "json":
                    print(f"job {job.job_id} ({job.type}, forked from {args.job_id})", flush=True)
                code = await _watch(client, job.job_id, 0, args.output, job)
                if args.output != "json":
                    _print_job(await client.get_job(job.job_id), args.output)
                return code
            if args.output == "json":
                _print_job(job, "json")
            else:
                print(job.job_id)
            return 0
        if args.command == "answer":
            return await _answer(client, args)
        if args.command == "bulk":
            return await _bulk(client, args)
        if args.command == "upload":
            stored = await client.upload(_read_file(args.file), args.content_type)
            if args.output == "json":
                print(json.dumps(_to_json(stored)))
            else:
                print(f"{stored.upload_id}  {stored.size:,} bytes  sha256 {stored.sha256}")
            return 0
        if args.command == "download":
            artifact, pieces = await client.download(args.job_id, args.name)
            target = args.to or _SAFE_NAME.sub("_", artifact.name or args.name)
            size = await _save(pieces, target, artifact.sha256)
            if args.output == "json":
                print(json.dumps({**_to_json(artifact), "saved_to": target}))
            elif target != "-":
                print(f"saved {args.name} ({size:,} bytes, sha256 verified) to {target}")
            return 0
        if args.command == "webhooks":
            deliveries = await client.list_webhook_deliveries(args.job_id)
            if args.output == "json":
                print(json.dumps([_to_json(d) for d in deliveries], indent=2))
            else:
                _print_deliveries(deliveries)
            return 0
        if args.command == "types":
            types = await client.list_job_types()
            if args.output == "json":
                print(json.dumps([_to_json(t) for t in types], indent=2))
                return 0
            for t in types:
                print(f"{t.name}\n  steps: {' -> '.join(t.steps)}\n  {t.description}\n")
            return 0
    raise AssertionError(args.command)


async def _answer(client: Jobs, args: argparse.Namespace) -> int:
    """``jobctl answer``: the answer read first (a bad one costs no call), then the step
    (``--step``, or the job's one waiting step), then SubmitInput; prints the job."""
    answer = read_answer(
        args.approve,
        _read_text(args.input) if args.input is not None else None,
        args.input_file,
    )
    step = args.step
    if not step:
        try:
            step = only_waiting_step(await client.get_job(args.job_id))
        except NothingWaiting as error:
            print(f"jobctl: {error}", file=sys.stderr)
            return EXIT_PRECONDITION
    job = await client.submit_input(args.job_id, step, answer)
    if args.output != "json":
        print(f"answered {step}")
    _print_job(job, args.output)
    return 0


def _read_text(raw: str) -> str:
    """``--input``'s text: inline, ``@file`` or ``-`` (stdin)."""
    if raw == "-":
        return sys.stdin.read()
    if raw.startswith("@"):
        return Path(raw[1:]).read_text(encoding="utf-8")
    return raw


async def _bulk(client: Jobs, args: argparse.Namespace) -> int:
    """``jobctl bulk retry|cancel``: page after page until no job matching is left (or
    ``--max-pages``), a line of progress per page; the last line says how to go on. Without
    ``--before``, the run takes only jobs created before it started, so it ends even while
    new jobs keep failing."""
    where = BulkFilter(
        job_type=args.type or "",
        status=f"JOB_STATUS_{args.status.upper()}" if args.status else "",
        owner=args.owner or "",
        created_after=args.since,
        created_before=args.before or datetime.now(UTC),
    )
    method = client.bulk_retry if args.operation == "retry" else client.bulk_cancel
    done = "retried" if args.operation == "retry" else "cancelled"
    token, pages, changed, skipped = args.page_token, 0, 0, 0
    while True:
        page = await method(where, limit=args.limit, page_token=token)
        pages += 1
        changed += page.changed
        skipped += page.skipped
        token = page.next_page_token
        if args.output == "json":
            print(json.dumps({**_to_json(page), "page": pages}), flush=True)
        else:
            print(
                f"page {pages}: {done} {page.changed}, skipped {page.skipped} "
                f"(so far {done} {changed}, skipped {skipped})",
                flush=True,
            )
        if not token or (args.max_pages and pages >= args.max_pages):
            break
    if token and args.output != "json":
        assert where.created_before is not None
        print(
            f"more: jobctl bulk {args.operation} ... "
            f"--before {where.created_before.isoformat()} --page-token {token}"
        )
    elif args.output != "json":
        print(f"done: {done} {changed}, skipped {skipped}")
    return 0


def _print_deliveries(deliveries: Sequence[jobs_pb2.WebhookDelivery]) -> None:
    """One line per delivery; the last column is the last try's HTTP status or the class
    of error it met, and for one still pending, when the next try is due."""
    if not deliveries:
        print("no webhook deliveries (none of its events was sent to a webhook yet)")
        return
    width = max(len("WEBHOOK ID"), *(len(d.webhook_id) for d in deliveries))
    print(f"{'WEBHOOK ID':<{width}}  {'TYPE':<18} {'ATTEMPTS':>8}  {'STATE':<10} LAST")
    for d in deliveries:
        state = jobs_pb2.WebhookDeliveryState.Name(d.state).removeprefix("WEBHOOK_DELIVERY_STATE_")
        last = str(d.last_status_code) if d.last_status_code else d.last_error or "-"
        if d.state == jobs_pb2.WEBHOOK_DELIVERY_STATE_PENDING and d.HasField("next_attempt_at"):
            due = d.next_attempt_at.ToDatetime(tzinfo=UTC)
            last += f"  (next try {due:%Y-%m-%d %H:%M:%S} UTC)"
        print(f"{d.webhook_id:<{width}}  {d.type:<18} {d.attempts:>8}  {state.lower():<10} {last}")


#: Bytes read from a file to upload at a time.
UPLOAD_PIECE = 256 * 1024


async def _read_file(path: str) -> AsyncIterator[bytes]:
    """The file (``-``: stdin) in pieces, as they are read."""
    # A command-line tool's loop has nothing else to run: plain file calls are fine.
    source = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: ASYNC230, SIM115
    try:
        while piece := source.read(UPLOAD_PIECE):
            yield piece
    finally:
        if source is not sys.stdin.buffer:
            source.close()


#: What an artifact's name may keep as a file name here; anything else becomes ``_``.
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


async def _save(pieces: AsyncIterator[bytes], target: str, sha256: str) -> int:
    """Write ``pieces`` to ``target`` (``-``: stdout) as they come, checking their sha256
    at the end; a file is written beside its name and renamed only once it checks out."""
    hasher = hashlib.sha256()
    size = 0

    def check(outcome: str) -> None:
        if sha256 and hasher.hexdigest() != sha256:
            raise ConnectionError(f"the download does not match its sha256; {outcome}")

    if target == "-":
        async for piece in pieces:
            hasher.update(piece)
            size += len(piece)
            sys.stdout.buffer.write(piece)
        sys.stdout.buffer.flush()
        check("the bytes written out are not the file")
        return size
    partial = Path(f"{target}.part")
    try:
        # A command-line tool's loop has nothing else to run: plain file calls are fine.
        with partial.open("wb") as out:  # noqa: ASYNC230
            async for piece in pieces:
                hasher.update(piece)
                size += len(piece)
                out.write(piece)
        check("nothing saved")
        partial.replace(target)  # noqa: ASYNC240
    finally:
        partial.unlink(missing_ok=True)  # noqa: ASYNC240
    return size


def _default_secret() -> str:
    secret = os.environ.get("JWT_SECRET", "")
    dev_file = Path(".dev/jwt_secret")
    if not secret and dev_file.exists():
        secret = dev_file.read_text().strip()
    return secret


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobctl",
        description="Submit, watch and manage durable AI jobs.",
        epilog="Environment: JOBS_API_ADDR, JOBS_NOTIFIER_ADDR, JOBS_HTTP, JOBS_TOKEN, JWT_SECRET.",
    )
    parser.add_argument(
        "--api",
        default=os.environ.get("JOBS_API_ADDR", "127.0.0.1:50051"),
        help="job_api address (default %(default)s)",
    )
    parser.add_argument(
        "--notifier",
        default=os.environ.get("JOBS_NOTIFIER_ADDR", "127.0.0.1:50052"),
        help="notifier address (default %(default)s)",
    )
    parser.add_argument(
        "--http",
        metavar="URL",
        default=os.environ.get("JOBS_HTTP") or None,
        help="talk to the HTTP gateway at URL (e.g. http://127.0.0.1:8080) instead of gRPC",
    )
    parser.add_argument("--token", help="bearer token (default $JOBS_TOKEN)")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-call deadline, s")
    parser.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="text for people, json for scripts",
    )
    # Also accepted after the command (`jobctl get ID -o json`), as kubectl does.
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("-o", "--output", choices=("text", "json"), default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    token = sub.add_parser("token", help="mint a development token (HS256)", parents=[output])
    token.add_argument("--sub", required=True, help="the user the token speaks for")
    token.add_argument("--ttl", type=int, default=24 * 3600, help="lifetime in seconds")
    token.add_argument(
        "--secret", default=None, help="HS256 secret (default $JWT_SECRET, else .dev/jwt_secret)"
    )
    token.add_argument("--admin", action="store_true", help="add the jobs:admin scope")
    token.add_argument(
        "--issuer",
        default=os.environ.get("JWT_ISSUER") or None,
        help="iss claim (default $JWT_ISSUER)",
    )
    token.add_argument(
        "--audience",
        default=os.environ.get("JWT_AUDIENCE") or None,
        help="aud claim (default $JWT_AUDIENCE)",
    )

    submit = sub.add_parser("submit", help="create a job", parents=[output])
    submit.add_argument("type", nargs="?", help="job type (see `jobctl types`)")
    submit.add_argument(
        "--request", "-r", help='a whole {"type", "input"} document: @file.json or - for stdin'
    )
    submit.add_argument("--input", "-i", help="JSON input: inline, @file.json, or - for stdin")
    submit.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="set a top-level input field (repeatable)",
    )
    submit.add_argument("--idempotency-key", default="")
    submit.add_argument("--priority", type=int, default=0, help="1-9, higher first (5)")
    submit.add_argument(
        "--not-before",
        type=_instant,
        metavar="WHEN",
        help="do not start before: an ISO 8601 time, or +SECONDS from now",
    )
    submit.add_argument(
        "--deadline", type=float, metavar="SECONDS", help="fail the job this long after now"
    )
    submit.add_argument("--concurrency-key", default="", help="share your turn by this key")
    submit.add_argument(
        "--concurrency-limit",
        type=int,
        default=0,
        metavar="N",
        help="with --concurrency-key: run at most N of its jobs at once (1-1000)",
    )
    submit.add_argument(
        "--webhook-url",
        default="",
        metavar="URL",
        help="POST the job's terminal event here, signed (see `jobctl webhooks`)",
    )
    submit.add_argument("--watch", "-w", action="store_true", help="follow it to the end")

    watch = sub.add_parser("watch", help="follow a job's progress live", parents=[output])
    watch.add_argument("job_id")
    watch.add_argument("--after", type=int, default=0, help="resume after this sequence")

    for name, text in (
        ("get", "show a job"),
        ("cancel", "cancel a job"),
        ("retry", "resume a failed or cancelled job"),
        ("delete", "erase a job and its data"),
    ):
        cmd = sub.add_parser(name, help=text, parents=[output])
        cmd.add_argument("job_id")

    answer = sub.add_parser(
        "answer",
        help="answer a job's step that waits for input (approve its draft, or send your own)",
        parents=[output],
    )
    answer.add_argument("job_id")
    answer.add_argument(
        "--step", help="the step to answer (default: the job's one step waiting for input)"
    )
    given = answer.add_mutually_exclusive_group(required=True)
    given.add_argument(
        "--approve", action="store_true", help='take the draft as it is: {"approved": true}'
    )
    given.add_argument(
        "--input",
        "-i",
        metavar="JSON",
        help="the answer as JSON: inline, @file.json, or - for stdin",
    )
    given.add_argument("--input-file", metavar="PATH", help="the answer as a JSON file")

    fork = sub.add_parser(
        "fork",
        help="a new job from one of yours: its steps before --from reused, the rest run",
        parents=[output],
    )
    fork.add_argument("job_id")
    fork.add_argument(
        "--from", dest="from_step", default="", help="the first step to run (default: the first)"
    )
    fork.add_argument(
        "--set",
        action="append",
        metavar="KEY=JSON",
        help="replace one top-level key of the input (repeatable)",
    )
    fork.add_argument(
        "--input-overrides", metavar="FILE", help="a JSON object of keys to replace (- for stdin)"
    )
    fork.add_argument(
        "--idempotency-key",
        default="",
        help="repeating the fork with the same key returns the same job (and lets it be retried)",
    )
    fork.add_argument("--watch", "-w", action="store_true", help="follow it to the end")

    bulk = sub.add_parser(
        "bulk",
        help="operators: retry or cancel every job matching a filter, page by page",
        parents=[output],
    )
    bulk.add_argument("operation", choices=("retry", "cancel"))
    bulk.add_argument("--type", help="only jobs of this type")
    bulk.add_argument(
        "--status",
        choices=_STATUS_NAMES,
        help="only this status (default: failed and cancelled to retry, queued and running "
        "to cancel)",
    )
    bulk.add_argument("--owner", help="only this user's jobs")
    bulk.add_argument("--since", type=_instant, help="only jobs created at or after (ISO 8601)")
    bulk.add_argument(
        "--before", type=_instant, help="only jobs created before (ISO 8601; default: now)"
    )
    bulk.add_argument("--limit", type=int, default=0, help="jobs per call (default 100)")
    bulk.add_argument("--page-token", default="", help="go on from where a run stopped")
    bulk.add_argument("--max-pages", type=int, default=0, help="stop after this many calls")

    listing = sub.add_parser("list", help="list your jobs, newest first", parents=[output])
    listing.add_argument("--status", choices=_STATUS_NAMES)
    listing.add_argument("--type")
    listing.add_argument("--parent", metavar="JOB_ID", help="only the jobs this import created")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--page-token", default="")

    sub.add_parser("types", help="list job types and their steps", parents=[output])

    hooks = sub.add_parser(
        "webhooks",
        help="list a job's webhook deliveries: tries, state (dead: a dead letter), last status",
        parents=[output],
    )
    hooks.add_argument("job_id")

    upload = sub.add_parser(
        "upload", help="store a file for later jobs (bulk_import's upload_id)", parents=[output]
    )
    upload.add_argument("file", help="the file (- for stdin)")
    upload.add_argument(
        "--content-type", default="application/x-ndjson", help="its media type (JSON lines)"
    )

    download = sub.add_parser(
        "download", help="save one of a job's artifacts (see its result)", parents=[output]
    )
    download.add_argument("job_id")
    download.add_argument("name", help="the artifact's name, as the job's result lists it")
    download.add_argument(
        "--to", metavar="PATH", help="where to save it (default: its name here; - for stdout)"
    )
    return parser


#: What a shell reports for a command killed by SIGPIPE: `jobctl list | head` ends so.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


def main(argv: Sequence[str] | None = None) -> int:
    # Behave like a Unix tool in a pipeline (`jobctl list | head`): no traceback when the
    # reader goes away. Not by restoring SIGPIPE's default action, which would also kill
    # the process for a write to one of gRPC's own sockets or wake-up pipes as it shuts
    # down: only a broken stdout ends it, quietly.
    try:
        return _main(argv)
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _silence_stdout() -> None:
    """Whatever is still buffered for stdout has nowhere to go: point it at /dev/null so
    that the interpreter's final flush does not raise again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "token":
        secret = args.secret or _default_secret()
        if not secret:
            print("jobctl: no secret: pass --secret or set JWT_SECRET", file=sys.stderr)
            return EXIT_USAGE
        print(
            mint_token(
                secret,
                args.sub,
                ttl_s=args.ttl,
                scopes=("jobs:admin",) if args.admin else (),
                issuer=args.issuer,
                audience=args.audience,
            )
        )
        return 0
    try:
        return asyncio.run(_run(args))
    except BrokenPipeError:
        raise
    except ConnectionError as error:  # a watch whose stream kept closing early
        print(f"jobctl: {error}", file=sys.stderr)
        return _EXIT_BY_CODE[grpc.StatusCode.UNAVAILABLE]
    except (ValueError, OSError) as error:
        print(f"jobctl: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (grpc.aio.AioRpcError, GatewayError) as error:
        print(f"jobctl: {error.code().name}: {error.details()}", file=sys.stderr)
        violations = (
            error.field_violations() if isinstance(error, GatewayError) else field_violations(error)
        )
        for field, description in violations:
            print(f"  {field}: {description}", file=sys.stderr)
        return _EXIT_BY_CODE.get(error.code(), 10)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
