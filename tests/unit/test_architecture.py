"""The import rules ARCHITECTURE.md states, checked on the source so the map stays true:
no service imports another service, the shared package imports no service, and the pure
domain modules import no transport or driver (grpc, asyncpg, nats)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__main__.py").exists())
#: Pure domain: decisions and data, testable without a server.
DOMAIN_MODULES = [
    "libs/jobkit/lifecycle.py",
    "libs/jobkit/model.py",
    "libs/jobkit/control.py",
    "libs/jobkit/catalog.py",
    "libs/jobkit/errors.py",
    "services/orchestrator/state_machine.py",
    "services/gateway/routes.py",
]
TRANSPORTS_AND_DRIVERS = {"grpc", "grpc_health", "grpc_reflection", "asyncpg", "nats"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_services_are_found() -> None:
    assert {"job_api", "orchestrator", "ai_worker", "notifier", "gateway"} <= set(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service(service: str) -> None:
    for path in (ROOT / "services" / service).rglob("*.py"):
        for module in imports_of(path):
            parts = module.split(".")
            if parts[0] == "services" and len(parts) > 1:
                assert parts[1] == service, f"{path.relative_to(ROOT)} imports {module}"


def test_the_shared_package_imports_no_service() -> None:
    for path in (ROOT / "libs" / "jobkit").rglob("*.py"):
        if "gen" in path.relative_to(ROOT / "libs" / "jobkit").parts:
            continue
        for module in imports_of(path):
            assert module.split(".")[0] != "services", f"{path.relative_to(ROOT)} imports {module}"


@pytest.mark.parametrize("module", DOMAIN_MODULES)
def test_domain_modules_import_no_transport_or_driver(module: str) -> None:
    for imported in imports_of(ROOT / module):
        assert imported.split(".")[0] not in TRANSPORTS_AND_DRIVERS, f"{module} imports {imported}"
