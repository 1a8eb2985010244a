"""The PII canary: synthetic personal data driven through every RPC, every error path,
retries, a cancelled and a deleted job, at DEBUG level, into the real logs of all four
services. Then every canary and its variants (lower-cased, digits only) is searched for in
those logs: zero hits."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from devstack import Stack
from jobctl.client import JobsClient

pytestmark = pytest.mark.e2e

NAMES = ["Zoë Ann O'Brien-Smith", "Jürgen Groß-Müller", "Siobhán Ní Bhriain"]
EMAILS = ["zoe.obrien+jobs@example.org", "j.gross-mueller@mail.example.de"]
PHONES = ["+44 20 7946 0958", "+1 (415) 555-0173", "020 7946 0321", "+33 6 12 34 56 78"]
CARDS = ["4111 1111 1111 1111", "5555-5555-5555-4444"]
NATIONAL_IDS = ["219-09-9999", "QQ 12 34 56 C"]
IBANS = ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000"]
ADDRESS = "221B Baker Street\nLondon NW1 6XE"
CANARIES = [*NAMES, *EMAILS, *PHONES, *CARDS, *NATIONAL_IDS, *IBANS, ADDRESS]


def variants(canary: str) -> Iterator[str]:
    yield canary
    yield canary.lower()
    digits = re.sub(r"\D", "", canary)
    if len(digits) >= 7:
        yield digits
    yield from canary.splitlines()
    if canary in NAMES:
        yield from (part for part in re.split(r"[\s]+", canary) if len(part) > 3)


def resume() -> dict[str, Any]:
    return {
        "name": NAMES[0],
        "email": EMAILS[0],
        "phone": PHONES[0],
        "location": ADDRESS,
        "summary": f"Paid by card {CARDS[0]}, IBAN {IBANS[0]}, SSN {NATIONAL_IDS[0]}. "
        f"Reference: {NAMES[1]} ({EMAILS[1]}, {PHONES[1]}).",
        "skills": ["Python", "PostgreSQL"],
        "experience": [
            {
                "title": "Engineer",
                "company": "Canary Works",
                "bullets": [
                    f"Shipped Python services for {NAMES[2]}, call {PHONES[2]}",
                    f"Moved to {ADDRESS}; NI {NATIONAL_IDS[1]}; {IBANS[1]}",
                ],
            }
        ],
    }


POSTING = {
    "title": "Backend Engineer",
    "company": "Acme",
    "description": f"Python and PostgreSQL. Apply to {EMAILS[1]} or {PHONES[3]}.",
}


@pytest.fixture(scope="module")
def debug_stack(tmp_root: Path) -> Iterator[Stack]:
    env = {"LOG_LEVEL": "DEBUG", "RATE_LIMIT_PER_MINUTE": "0"}
    running = Stack(tmp_root / "pii-stack", extra_env=env).start()
    yield running
    running.stop()


async def expect_error(call: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError):
        await call


async def test_no_canary_reaches_any_log(debug_stack: Stack) -> None:
    stack = debug_stack
    async with JobsClient(
        stack.job_api_addr, stack.notifier_addr, stack.token(EMAILS[0])
    ) as client:
        # The happy path, watched live.
        job = await client.create_job(
            "cv_tailoring",
            {"resume": resume(), "job_posting": POSTING},
            idempotency_key=f"key {NAMES[0]}",
        )
        events = [e async for e in client.watch(job.job_id)]
        assert events[-1].status == 3  # SUCCEEDED
        await client.get_job(job.job_id)
        await client.list_jobs(job_type="cv_tailoring")
        # Idempotency replay and conflict.
        await client.create_job(
            "cv_tailoring",
            {"resume": resume(), "job_posting": POSTING},
            idempotency_key=f"key {NAMES[0]}",
        )
        await expect_error(
            client.create_job(
                "cv_tailoring",
                {"resume": {**resume(), "phone": PHONES[3]}, "job_posting": POSTING},
                idempotency_key=f"key {NAMES[0]}",
            )
        )
        # Invalid input carrying personal data in every field it can.
        await expect_error(
            client.create_job(
                "cv_tailoring",
                {
                    "resume": {**resume(), "name": 42, "skills": NAMES},
                    "job_posting": {"title": NAMES[1]},
                },
            )
        )
        await expect_error(client.create_job(f"type {EMAILS[1]}", {"x": CARDS[1]}))
        await expect_error(client.get_job(f"{NAMES[0]} {PHONES[0]}"))
        await expect_error(client.list_jobs(page_token=IBANS[0]))
        # Retries (a retryable failure per step), then a cancel, a retry and a delete.
        noop = await client.create_job(
            "noop",
            {"sleep_ms": 300, "fail_attempts": 1, "note": f"{NAMES[1]} {EMAILS[1]} {CARDS[1]}"},
        )
        async for event in client.watch(noop.job_id):
            if event.type == 5:  # STEP_RETRYING
                break
        await client.cancel_job(noop.job_id)
        await client.retry_job(noop.job_id)
        [e async for e in client.watch(noop.job_id)]
        doomed = await client.create_job("noop", {"sleep_ms": 5000, "who": NAMES[2]})
        await asyncio.sleep(0.5)
        await client.delete_job(doomed.job_id)
    # Credentials that are themselves personal data.
    for token in (EMAILS[1], f"{EMAILS[0]}.{PHONES[1]}.{CARDS[0]}"):
        async with JobsClient(stack.job_api_addr, stack.notifier_addr, token) as intruder:
            await expect_error(intruder.get_job(job.job_id))
    await asyncio.sleep(1.0)  # last lines flushed

    logs = {s.name: s.log_path.read_text(encoding="utf-8") for s in stack.services.values()}
    assert all(logs.values()), "every service wrote a log"
    assert any('"level": "debug"' in text for text in logs.values()), "DEBUG lines were written"
    hits = [
        (service, variant)
        for service, text in logs.items()
        for canary in CANARIES
        for variant in variants(canary)
        if variant in text or variant.lower() in text.lower()
    ]
    assert hits == []
