"""The import rules ARCHITECTURE.md states, checked on the source so the map stays true:
no service imports another service, the shared packages import no service, a job type's
spec imports nothing a worker runs, the pure domain modules import no transport or driver
(grpc, asyncpg, nats), and nothing the product ships imports the dev stack
(``devstack/``)."""

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
    "libs/jobkit/inputs.py",
    "libs/jobkit/standing.py",
    "services/orchestrator/state_machine.py",
    "services/orchestrator/batching.py",
    "services/orchestrator/fairness.py",
    "libs/jobkit/planning.py",
    "services/gateway/routes.py",
    "services/notifier/webhooks.py",
]
TRANSPORTS_AND_DRIVERS = {"grpc", "grpc_health", "grpc_reflection", "asyncpg", "nats"}
#: The shared libraries, each below the services: jobkit (infrastructure), stepkit (what
#: a step handler is written with), resume (the résumé engine).
LIBRARIES = sorted(p.name for p in (ROOT / "libs").iterdir() if (p / "__init__.py").exists())
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


def test_the_libraries_are_found() -> None:
    assert {"jobkit", "stepkit", "resume"} <= set(LIBRARIES)


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_library_imports_no_service_and_no_job_type(library: str) -> None:
    for path in (ROOT / "libs" / library).rglob("*.py"):
        if "gen" in path.relative_to(ROOT / "libs" / library).parts:
            continue
        for module in imports_of(path):
            top = module.split(".")[0]
            assert top not in {"services", "jobtypes"}, f"{path.relative_to(ROOT)} imports {module}"


def test_jobkit_knows_nothing_of_steps() -> None:
    """Infrastructure sits below the step library and the résumé engine, not beside them."""
    for path in (ROOT / "libs" / "jobkit").rglob("*.py"):
        for module in imports_of(path):
            assert module.split(".")[0] not in {"stepkit", "resume"}, (
                f"{path.relative_to(ROOT)} imports {module}"
            )


JOB_TYPE_DIRS = sorted(p for p in (ROOT / "jobtypes").iterdir() if (p / "spec.py").exists())


def test_the_job_types_are_found() -> None:
    assert {"cv_tailoring", "noop"} <= {p.name for p in JOB_TYPE_DIRS}


@pytest.mark.parametrize("folder", JOB_TYPE_DIRS, ids=lambda p: p.name)
def test_a_job_type_spec_imports_nothing_a_worker_runs(folder: Path) -> None:
    """job_api and the orchestrator import every spec: a spec that pulled in step code,
    a model provider or a driver would drag it into every service."""
    for module in imports_of(folder / "spec.py"):
        top = module.split(".")[0]
        assert top not in {"stepkit", "services", *TRANSPORTS_AND_DRIVERS}, (
            f"jobtypes/{folder.name}/spec.py imports {module}"
        )
        assert not module.endswith(".steps"), f"jobtypes/{folder.name}/spec.py imports {module}"


@pytest.mark.parametrize("folder", JOB_TYPE_DIRS, ids=lambda p: p.name)
def test_a_job_type_imports_no_service_and_no_other_job_type(folder: Path) -> None:
    for path in folder.glob("*.py"):
        for module in imports_of(path):
            parts = module.split(".")
            assert parts[0] != "services", f"{path.relative_to(ROOT)} imports {module}"
            if parts[0] == "jobtypes" and len(parts) > 1:
                assert parts[1] == folder.name, f"{path.relative_to(ROOT)} imports {module}"


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
    assert {"jobkit", "stepkit", "resume", "jobtypes", "services", "jobctl"} <= {
        p.name for p in product_packages()
    }
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
