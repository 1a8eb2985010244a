"""Generate the Python stubs for protos/ into libs/jobkit/gen (run as `make protos`).

protoc writes imports such as ``from jobs.v1 import jobs_pb2``; they are rewritten to
``from jobkit.gen.jobs.v1 import jobs_pb2`` so the stubs live inside the shared package
instead of claiming top-level module names.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc_tools

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "libs" / "jobkit" / "gen"
BIN = Path(sys.executable).parent
IMPORT_RE = re.compile(r"^from (jobs\.[\w.]+) import", re.MULTILINE)


def generate(out: Path) -> None:
    """Write the stubs for every proto under protos/ into ``out`` (replaced whole)."""
    # protos/google holds vendored googleapis files; their Python modules come from
    # googleapis-common-protos.
    sources = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / "jobs").rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{PROTOS}",
                f"-I{well_known}",
                f"--python_out={tmp}",
                f"--pyi_out={tmp}",
                f"--grpc_python_out={tmp}",
                f"--plugin=protoc-gen-mypy_grpc={BIN / 'protoc-gen-mypy_grpc'}",
                f"--mypy_grpc_out={tmp}",
                *sources,
            ],
            check=True,
            cwd=PROTOS,
            # protoc-gen-mypy_grpc chats on stderr about every file it writes.
            stderr=subprocess.DEVNULL,
        )
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(tmp, out)
    for path in out.rglob("*.py*"):
        text = path.read_text()
        path.write_text(IMPORT_RE.sub(r"from jobkit.gen.\1 import", text))
    for directory in [out, *(p for p in out.rglob("*") if p.is_dir())]:
        (directory / "__init__.py").touch()
    (out / "py.typed").touch()


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def main() -> int:
    if "--check" not in sys.argv[1:]:
        generate(OUT)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "gen"
        generate(fresh)
        if _snapshot(fresh) != _snapshot(OUT):
            print("libs/jobkit/gen is stale: run `make protos` and commit the result")
            return 1
    print("generated stubs are up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
