"""The import rules ARCHITECTURE.md states, checked on the source so the map stays true:
no service imports another service, the shared package imports no service, and the pure
domain modules import no transport or driver (grpc, asyncpg, nats), and nothing the
product ships imports the dev stack (``devstack/``)."""

from __future__ import annotations

import ast
import fnmatch
import tomllib
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
    "services/orchestrator/batching.py",
    "services/job_api/planning.py",
    "services/gateway/routes.py",
]
TRANSPORTS_AND_DRIVERS = {"grpc", "grpc_health", "grpc_reflection", "asyncpg", "nats"}
#: Development tooling, outside the product: neither the wheel nor the image has it.
DEV_ONLY_PACKAGES = {"devstack"}


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


def product_packages() -> list[Path]:
    """The top-level packages the wheel (and so the image) ships: those the pyproject's
    ``[tool.setuptools.packages.find]`` settings select (``tests/unit/test_packaging.py``
    runs setuptools' own discovery with them)."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        find = tomllib.load(f)["tool"]["setuptools"]["packages"]["find"]
    include, exclude = find.get("include", ["*"]), find.get("exclude", [])
    return [
        folder
        for where in find.get("where", ["."])
        for folder in sorted((ROOT / where).iterdir())
        if (folder / "__init__.py").is_file()
        and any(fnmatch.fnmatchcase(folder.name, pattern) for pattern in include)
        and not any(fnmatch.fnmatchcase(folder.name, pattern) for pattern in exclude)
    ]


def product_sources() -> list[Path]:
    """Every Python file the product ships, generated stubs aside."""
    return [
        path
        for package in product_packages()
        for path in sorted(package.rglob("*.py"))
        if "gen" not in path.relative_to(package).parts
    ]


def test_the_product_sources_are_found() -> None:
    assert {"jobkit", "services", "jobctl"} <= {p.name for p in product_packages()}
    found = {path.relative_to(ROOT).as_posix() for path in product_sources()}
    assert {"libs/jobkit/runtime.py", "services/job_api/__main__.py", "jobctl/cli.py"} <= found


def test_the_product_imports_no_dev_tooling() -> None:
    """The dev stack is not in the wheel or the image, so an import of it from the product
    would fail in production; it also must not become a way for dev-only code (useradd,
    embedded servers) back into the product."""
    for path in product_sources():
        for module in imports_of(path):
            assert module.split(".")[0] not in DEV_ONLY_PACKAGES, (
                f"{path.relative_to(ROOT)} imports {module}"
            )
