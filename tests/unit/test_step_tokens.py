"""Step tokens: issued for one attempt, verified for its job only, expiring after the
step's timeout and a grace; no user JWT or watch token passes as one, nor a step token as
either. And where they are minted: the dispatch of a job type that reads its owner's
history, and no other."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from jobkit import planning
from jobkit.auth import Authenticator, mint_token
from jobkit.dispatch import bare_task, step_task
from jobkit.errors import PermissionDenied, Unauthenticated
from jobkit.gen.jobs.internal.v1 import worker_pb2
from jobkit.lifecycle import JobStatus, StepStatus
from jobkit.model import NewJob
from jobkit.step_tokens import StepGrant, StepTokens, step_token_secret
from jobkit.watch_tokens import WatchTokens
from jobtypes import CATALOG
from services.job_api.export import check_grant

SECRET = "s3cret-for-unit-tests-only-0123456789"
JOB = "0b5c7a52-5f7c-4c1e-9d7e-0f2d8c3b1a11"
T0 = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def tokens(clock: Clock | None = None, secret: str = SECRET) -> StepTokens:
    return StepTokens(secret, job_types=["data_export"], grace_s=60, clock=clock or Clock())


def test_a_token_verifies_for_its_job_with_its_scope() -> None:
    issued = tokens().issue("alice", JOB, "export_jobs", 2, timeout_s=900)
    grant = tokens().verify(issued, JOB)
    assert grant == StepGrant(
        "alice", JOB, "export_jobs", 2, datetime.fromtimestamp(T0 + 900 + 60, UTC)
    )


def test_it_expires_a_grace_after_the_step_s_timeout_from_when_the_attempt_may_start() -> None:
    clock = Clock()
    issued = tokens(clock).issue("alice", JOB, "export_jobs", 1, timeout_s=100)
    clock.now = T0 + 100 + 60 - 1
    assert tokens(clock).verify(issued, JOB).subject == "alice"
    clock.now = T0 + 100 + 60 + 10  # past the 5 s leeway
    with pytest.raises(Unauthenticated):
        tokens(clock).verify(issued, JOB)
    # A retry's attempt that may start only after its back-off is valid that much longer.
    later = datetime.fromtimestamp(T0 + 1000, UTC)
    delayed = tokens(Clock()).issue("alice", JOB, "export_jobs", 2, timeout_s=100, not_before=later)
    clock.now = T0 + 1000 + 100 + 30
    assert tokens(clock).verify(delayed, JOB).attempt == 2


def test_a_token_for_another_job_is_permission_denied() -> None:
    issued = tokens().issue("alice", JOB, "export_jobs", 1, timeout_s=900)
    with pytest.raises(PermissionDenied):
        tokens().verify(issued, str(uuid.uuid4()))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        # Signed with another secret.
        tokens(secret="another-secret-0123456789abcdef").issue(
            "alice", JOB, "export_jobs", 1, timeout_s=900
        ),
        # The user's own JWT, and one signed with the very secret the step key derives from.
        mint_token(SECRET, "alice"),
        jwt.encode(
            {"sub": "alice", "job": JOB, "step": "export_jobs", "attempt": 1, "exp": T0 + 999},
            SECRET,
            algorithm="HS256",
            headers={"typ": "jobs-step+jwt"},
        ),
        # A watch token for the same job and user.
        WatchTokens(SECRET).issue("alice", JOB, datetime.fromtimestamp(T0, UTC))[0],
        # alg none.
        jwt.encode(
            {"sub": "alice", "job": JOB, "step": "export_jobs", "attempt": 1, "exp": T0 + 999},
            "",
            algorithm="none",
            headers={"typ": "jobs-step+jwt"},
        ),
    ],
    ids=["empty", "garbage", "other-secret", "user-jwt", "forged", "watch-token", "alg-none"],
)
def test_anything_but_a_step_token_of_this_deployment_is_unauthenticated(token: str) -> None:
    with pytest.raises(Unauthenticated):
        tokens().verify(token, JOB)


def test_a_step_token_is_neither_a_user_token_nor_a_watch_token() -> None:
    issued = StepTokens(SECRET, job_types=["data_export"]).issue(
        "alice", JOB, "export_jobs", 1, timeout_s=900
    )
    with pytest.raises(Unauthenticated):
        Authenticator(SECRET).verify(issued)
    with pytest.raises(Unauthenticated):
        WatchTokens(SECRET).verify(issued, JOB)


def test_the_secret_falls_back_to_the_jwt_secret() -> None:
    assert step_token_secret({"STEP_TOKEN_SECRET": "a", "JWT_SECRET": "b"}) == "a"
    assert step_token_secret({"JWT_SECRET": "b"}) == "b"
    assert step_token_secret({}) is None


def planned(job_type: str) -> NewJob:
    valid = planning.validate(
        planning.CreateRequest(job_type, b"", {}, None), CATALOG, max_input_bytes=1024
    )
    return planning.plan(
        valid,
        owner="alice",
        job_id=uuid.UUID(JOB),
        now=datetime.fromtimestamp(T0, UTC),
        trace_context="",
        step_tokens=tokens(),
    )


def test_the_first_dispatch_of_a_history_reading_type_carries_a_token_for_its_attempt() -> None:
    (message,) = planned("data_export").change.outbox
    task = worker_pb2.StepTask.FromString(message.payload)
    grant = tokens().verify(task.step_token, JOB)
    assert (grant.subject, grant.step, grant.attempt) == ("alice", "export_jobs", 1)
    # The timeout it was minted for is the step's.
    assert grant.expires_at == datetime.fromtimestamp(T0 + 900 + 60, UTC)


def test_other_types_and_deployments_without_a_secret_get_none() -> None:
    (message,) = planned("noop").change.outbox
    assert worker_pb2.StepTask.FromString(message.payload).step_token == ""
    job = planned("data_export").job
    assert step_task(job, "export_jobs", 1, 900).step_token == ""
    handed = bare_task(job, "export_jobs", 3, 900, step_tokens=tokens())
    assert tokens().verify(handed.step_token, JOB).attempt == 3


def test_job_api_checks_the_grant_against_the_job_in_postgres() -> None:
    job = planned("data_export").job
    grant = tokens().verify(tokens().issue("alice", JOB, "export_jobs", 1, timeout_s=9), JOB)
    check_grant(job, grant)  # queued, its first attempt dispatched
    step = job.steps[0]
    running = replace(job, status=JobStatus.RUNNING, steps=(replace(step, attempt=1),))
    check_grant(running, grant)
    refused = [
        None,
        replace(job, owner="bob"),
        replace(job, type="noop"),
        replace(job, status=JobStatus.SUCCEEDED),
        replace(job, status=JobStatus.CANCELLED),
        replace(running, steps=(replace(step, attempt=2),)),  # a newer attempt runs
        replace(running, steps=(replace(step, status=StepStatus.SUCCEEDED, attempt=1),)),
    ]
    for record in refused:
        with pytest.raises(PermissionDenied):
            check_grant(record, grant)
    other_step = replace(grant, step="nope")
    with pytest.raises(PermissionDenied):
        check_grant(running, other_step)
    assert timedelta(0) < grant.expires_at - datetime.fromtimestamp(T0, UTC)
