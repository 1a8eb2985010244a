"""``make dev``: the whole system in the foreground, with a banner of its addresses, a
token and the page's link; a service that exits is restarted; Ctrl-C stops everything.

    python -m devstack [--dir .dev] [--job-api-port 50051] [--notifier-port 50052]
                       [--http-port 8080] [--workers 1]
"""

from __future__ import annotations

import argparse
import secrets
import signal
import time
from pathlib import Path

from devstack.stack import Stack, new_webhook_secret


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack", description="Run the whole system locally."
    )
    parser.add_argument("--dir", default=".dev", help="data and logs (kept between runs)")
    parser.add_argument("--job-api-port", type=int, default=50051)
    parser.add_argument("--notifier-port", type=int, default=50052)
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="3 NATS nodes (R3 streams) and a Postgres primary with a synchronous standby",
    )
    args = parser.parse_args()
    root = Path(args.dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    secret_file = root / "jwt_secret"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(32))
    webhook_file = root / "webhook_secret"
    if not webhook_file.exists():
        webhook_file.write_text(new_webhook_secret())
    stack = Stack(
        root,
        jwt_secret=secret_file.read_text().strip(),
        webhook_secret=webhook_file.read_text().strip(),
        job_api_port=args.job_api_port,
        notifier_port=args.notifier_port,
        http_port=args.http_port,
        workers=args.workers,
        with_object_store=True,
        cluster=args.cluster,
    )
    stop_requested = False

    def request_stop(*_: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        stack.start()
        token = stack.token("dev-user")
        health = " ".join(
            f"{name} {s.env['HEALTH_ADDR']}"
            for name, s in stack.services.items()
            if "HEALTH_ADDR" in s.env
        )
        print(
            f"""
Durable jobs: the whole stack is running.

  job_api   (jobs.v1.JobService)       {stack.job_api_addr}
  notifier  (jobs.v1.NotifierService)  {stack.notifier_addr}
  gateway   (HTTP/JSON, SSE, the page) {stack.gateway_url}
  postgres  {stack.database_url}
  nats      {stack.nats_url}
  objects   {stack.object_store.endpoint if stack.object_store else ""} (S3, SeaweedFS)
  logs      {root / "logs"}
  metrics   {" ".join(s.metrics_url for s in stack.services.values())}
  health    {health} (grpc.health.v1, as the orchestrator's and the worker's probes ask)
  webhooks  signed with WEBHOOK_SECRET={stack.webhook_secret}
            (in {webhook_file}; WEBHOOK_ALLOW_HOSTS lets a local receiver in)

A token for user "dev-user" (24 h):

  export TOKEN={token}

Open the page (signed in as dev-user):

  {stack.gateway_url}/?token={token}

Try:
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" \\
      {stack.job_api_addr} jobs.v1.JobService/ListJobTypes
  .venv/bin/jobctl submit noop --input '{{"sleep_ms": 300}}' --watch
  curl -s -H "Authorization: Bearer $TOKEN" {stack.gateway_url}/v1/jobTypes

Ctrl-C stops everything.
""",
            flush=True,
        )
        while not stop_requested:
            for service in stack.services.values():
                if not service.alive():
                    print(f"{service.name} exited; restarting (see {service.log_path})", flush=True)
                    stack.start_service(service.name)
            time.sleep(0.5)
    finally:
        print("stopping...", flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
