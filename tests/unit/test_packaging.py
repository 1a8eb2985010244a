"""What the product ships leaves the dev tooling out.

``devstack/`` (``make dev``, the tests, the benchmarks and the chaos suite run the whole
system with it; it starts embedded Postgres and nats-server and may run ``useradd``) is a
top-level package beside ``services/``. The wheel is what ``pyproject.toml``'s
``[tool.setuptools.packages.find]`` discovers, and the image is the wheel installed from a
build context that ``.dockerignore`` allows; both must leave ``devstack`` out. That nothing
the product ships imports it is checked by ``test_architecture.py``.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path
from typing import Any

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = "devstack"


def _find_settings() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        settings: dict[str, Any] = tomllib.load(f)["tool"]["setuptools"]["packages"]["find"]
    return settings


def _as_list(value: str | list[str] | None, default: list[str]) -> list[str]:
    if value is None:
        return default
    return [value] if isinstance(value, str) else list(value)


def wheel_packages() -> list[str]:
    """The packages setuptools' own discovery puts in the wheel, with the pyproject's
    settings (each ``where`` searched like setuptools does for ``packages.find``)."""
    settings = _find_settings()
    include = _as_list(settings.get("include"), ["*"])
    exclude = _as_list(settings.get("exclude"), [])
    found: list[str] = []
    for where in _as_list(settings.get("where"), ["."]):
        found += find_packages(where=str(ROOT / where), include=include, exclude=exclude)
    return found


def _is_dev_only(package: str) -> bool:
    return package == DEV_ONLY or package.startswith(DEV_ONLY + ".")


def test_the_dev_stack_is_a_top_level_package() -> None:
    """It exists where the checks below look for it (else they would pass vacuously)."""
    assert (ROOT / DEV_ONLY / "__init__.py").is_file()
    assert (ROOT / DEV_ONLY / "__main__.py").is_file(), "python -m devstack is make dev"
    assert DEV_ONLY in find_packages(where=str(ROOT), include=[DEV_ONLY])


def test_the_wheel_has_the_product() -> None:
    packages = set(wheel_packages())
    assert {"jobkit", "jobctl", "services", "services.job_api", "services.gateway"} <= packages


def test_the_wheel_leaves_the_dev_stack_out() -> None:
    packages = wheel_packages()
    assert not [p for p in packages if _is_dev_only(p)], packages
    # Not merely excluded after the fact: no include pattern reaches it.
    include = _as_list(_find_settings().get("include"), ["*"])
    assert not [
        pattern
        for pattern in include
        if fnmatch.fnmatchcase(DEV_ONLY, pattern) or fnmatch.fnmatchcase(DEV_ONLY + ".x", pattern)
    ], include


def test_jobkit_has_no_dev_stack_modules() -> None:
    jobkit = ROOT / "libs" / "jobkit"
    assert (jobkit / "__init__.py").is_file()
    for name in ("devstack", "devservers"):
        assert not (jobkit / f"{name}.py").exists(), f"libs/jobkit/{name}.py ships in the wheel"
        assert not (jobkit / name).exists(), f"libs/jobkit/{name}/ ships in the wheel"


def test_the_image_build_context_leaves_the_dev_stack_out() -> None:
    """.dockerignore is an allow-list; the dev stack is not on it, and the Dockerfile
    copies nothing of it."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    allowed = [p[1:].strip("/") for p in patterns if p.startswith("!")]
    assert not [p for p in allowed if fnmatch.fnmatchcase(DEV_ONLY, p.split("/")[0])], allowed
    copies = [
        line.split()[1:]
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.strip().upper().startswith("COPY")
    ]
    assert not [c for c in copies if any(DEV_ONLY in arg for arg in c)], copies
