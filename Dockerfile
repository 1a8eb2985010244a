# syntax=docker/dockerfile:1
# One image for the five services (job_api, orchestrator, ai_worker, notifier and the browser
# gateway) and the migration Job; the module to run is the argument:
#   docker run durable-jobs services.orchestrator        (default: services.job_api)
#   docker run durable-jobs services.gateway             (HTTP_ADDR=0.0.0.0:8080, JOB_API_ADDR, ...)
#   docker run durable-jobs jobkit.migrate
# Every dependency ships manylinux wheels for CPython 3.11, so neither stage needs apt or a
# compiler. Build with:  docker build -t durable-jobs:0.1.0 .
# With span export over OTLP:  docker build --build-arg EXTRAS='[tracing]' -t durable-jobs:0.1.0 .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: install the project and its dependencies into a self-contained venv ----
FROM ${PYTHON_IMAGE} AS builder
# Optional extras of the project, e.g. "[tracing]" (OpenTelemetry SDK and OTLP exporter).
ARG EXTRAS=""

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Only what `pip install .` needs (.dockerignore keeps everything else out of the context).
COPY pyproject.toml README.md ./
COPY libs ./libs
COPY jobtypes ./jobtypes
COPY services ./services
COPY jobctl ./jobctl
# Not editable, so the venv holds compiled copies of the packages and /src is not needed
# at run time; pip byte-compiles them here, because the final root fs is read-only.
# The checks run with -P, so they import the installed venv and not the sources in /src:
# the entry points import, and the gateway's page (package data) made it into the wheel.
# DL3013: this installs the project itself (".[extras]"), whose pins live in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".${EXTRAS}" \
    && find /opt/venv -path '*/site-packages/jobtypes/*/test_*.py' -delete \
    && python -P -c "import services.job_api, services.gateway, services.orchestrator, jobkit.migrate" \
    && python -P -c "import importlib.resources as r, sys; \
sys.exit(0 if (r.files('services.gateway') / 'static' / 'index.html').is_file() \
else 'services/gateway/static is not in the wheel: add it to package-data in pyproject.toml')" \
    && python -P -c "import jobtypes, sys; \
sys.exit(0 if all(jobtypes.example(n) for n in jobtypes.NAMES) \
else 'a jobtypes/<name>/example.json is not in the wheel: see package-data in pyproject.toml')"

# ---- runtime: the same Python, the venv, a non-root user; no build tools ----
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="durable-jobs" \
      org.opencontainers.image.description="Durable multi-step AI jobs over gRPC: job_api, orchestrator, ai_worker, notifier; gateway: HTTP/JSON and Server-Sent Events for browsers"

# UID/GID 10001: matches runAsUser in deploy/ and stays clear of host system users.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

# PYTHONSAFEPATH: `python -m` must not put the working directory on sys.path.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONSAFEPATH=1

# A root-owned directory: nothing the app can write to is on its import path.
WORKDIR /app
# Numeric, so Kubernetes can verify runAsNonRoot without resolving a name.
USER 10001:10001

# job_api 50051, notifier 50052 (GRPC_ADDR), gateway 8080 (HTTP_ADDR): bind 0.0.0.0 in a
# container. Each service's Prometheus /metrics: 9464 (METRICS_ADDR), the gateway's on 8080.
EXPOSE 50051 50052 8080

ENTRYPOINT ["python", "-m"]
CMD ["services.job_api"]
