"""Domain errors know nothing of gRPC; one table at the RPC edge gives their status codes."""

from __future__ import annotations

import ast
from pathlib import Path

import grpc
import pytest

from jobkit import errors
from jobkit.rpc import STATUS_CODES, status_code


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.NotFound(), grpc.StatusCode.NOT_FOUND),
        (errors.InvalidArgument.on("job_id", "must be a UUID"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.AlreadyExists(), grpc.StatusCode.ALREADY_EXISTS),
        (errors.FailedPrecondition(), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.Unauthenticated(), grpc.StatusCode.UNAUTHENTICATED),
        (errors.PermissionDenied(), grpc.StatusCode.PERMISSION_DENIED),
        (errors.ResourceExhausted(retry_after_s=2), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.Unavailable(), grpc.StatusCode.UNAVAILABLE),
        (errors.ConfigError("x"), grpc.StatusCode.INTERNAL),
        (errors.JobkitError(), grpc.StatusCode.INTERNAL),
    ],
)
def test_each_domain_error_has_one_status(error: errors.JobkitError, code: grpc.StatusCode) -> None:
    assert status_code(error) == code


def test_a_subclass_takes_its_bases_status() -> None:
    class JobGone(errors.NotFound):
        pass

    assert status_code(JobGone()) == grpc.StatusCode.NOT_FOUND


def test_every_error_class_but_the_internal_ones_is_in_the_table() -> None:
    defined = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.JobkitError)
    }
    assert defined - set(STATUS_CODES) == {errors.JobkitError, errors.ConfigError}


def test_the_error_module_does_not_import_grpc() -> None:
    tree = ast.parse(Path(errors.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    assert not any(name.split(".")[0] == "grpc" for name in imported)
