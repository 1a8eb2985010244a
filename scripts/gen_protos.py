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
IMPORT_RE = re.compile(r"^from (jobs\.[\w.]+) import", re.MULTILINE)


def main() -> int:
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
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
                f"--plugin=protoc-gen-mypy_grpc={Path(sys.executable).parent / 'protoc-gen-mypy_grpc'}",
                f"--mypy_grpc_out={tmp}",
                *sources,
            ],
            check=True,
            cwd=PROTOS,
        )
        if OUT.exists():
            shutil.rmtree(OUT)
        shutil.copytree(tmp, OUT)
    for path in OUT.rglob("*.py*"):
        text = path.read_text()
        path.write_text(IMPORT_RE.sub(r"from jobkit.gen.\1 import", text))
    for directory in [OUT, *(p for p in OUT.rglob("*") if p.is_dir())]:
        (directory / "__init__.py").touch()
    (OUT / "py.typed").touch()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
