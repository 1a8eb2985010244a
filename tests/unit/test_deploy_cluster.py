"""Offline checks of the clustered backends' manifests: the CloudNativePG objects
(deploy/postgres, rendered with the venv's ``kubectl kustomize``), the NATS chart's values
(deploy/nats/values.yaml) and prod's settings pointing at both.

**CloudNativePG.** Every object deploy/postgres renders (the Cluster and its
ScheduledBackup) is validated with ``jsonschema`` against the ``openAPIV3Schema`` of its
served version in CNPG's own CRDs, vendored in tests/fixtures/cnpg-1.30.0 (release v1.30.0;
provenance in tests/fixtures/README.md). The schema is read the way the API server reads a
structural schema: ``x-kubernetes-*`` keys are dropped, ``nullable`` admits null, and an
object that declares ``properties`` without ``additionalProperties`` or
``x-kubernetes-preserve-unknown-fields`` admits no other field (the API server prunes
unknown fields, and kubectl's default strict field validation rejects them), so a misspelt
key fails. Not evaluated: formats and the CRDs' CEL rules (``x-kubernetes-validations``),
none of which concern fields used here.

**NATS.** The chart (nats-io/k8s ``helm/charts/nats``, chart 2.14.2, the version
deploy/nats/values.yaml and deploy/README.md pin) ships no values.schema.json, so our values
are checked against the chart's default values.yaml, vendored in
tests/fixtures/nats-chart-2.14.2: every key path of ours must be one of the chart's, with a
value of the same shape, except inside the maps the chart defaults to ``{}`` and leaves to
the user (the ``merge`` blocks, ``podTemplate.topologySpreadConstraints``, ``env``...).
Those of ours that become Kubernetes objects (the pod template's merge and spread
constraints, the PodDisruptionBudget's merge) are merged into the objects the chart's
templates build, as its ``nats.loadMergePatch`` does, and validated strictly against the
Kubernetes schemas of kubernetes-validate. The NATS server configuration blocks
(``config.merge``, ``config.jetstream.merge``) have no schema: their values are asserted.
Then the tests assert what the topology needs: three servers, fsynced file storage, spread
and anti-affinity, a PDB of one, and prod's NATS_URL and stream replicas.
"""

from __future__ import annotations

import copy
import functools
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from jobkit import bus
from tests.unit.test_deploy import (
    DEPLOY,
    KUBERNETES_VERSIONS,
    ROOT,
    _kustomize,
    config_of,
    render,
)

VALUES = DEPLOY / "nats" / "values.yaml"
FIXTURES = ROOT / "tests" / "fixtures"
#: CloudNativePG's CRDs (config/crd/bases of cloudnative-pg/cloudnative-pg at v1.30.0).
CNPG_CRDS = FIXTURES / "cnpg-1.30.0"
#: The NATS chart's version deploy/nats/values.yaml is written for (and README pins).
NATS_CHART_VERSION = "2.14.2"
#: The chart's default values (helm/charts/nats/values.yaml of nats-io/k8s at nats-2.14.2).
NATS_CHART_VALUES = FIXTURES / f"nats-chart-{NATS_CHART_VERSION}" / "values.yaml"
#: The chart's release name in deploy/nats/values.yaml's `helm upgrade --install nats`.
NATS_RELEASE = "nats"


def _values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(VALUES.read_text())
    return loaded


def _postgres() -> dict[str, dict[str, Any]]:
    objs = _kustomize(DEPLOY / "postgres", "deploy/postgres")
    return {o["kind"]: o for o in objs}


# --- CloudNativePG: the rendered objects against CNPG's CRDs --------------------------------


def structural(schema: Any) -> Any:
    """A CRD's OpenAPI v3 schema as the JSON Schema the API server in effect enforces."""
    if isinstance(schema, list):
        return [structural(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        k: structural(v)
        for k, v in schema.items()
        if not k.startswith("x-kubernetes-") and k != "nullable"
    }
    open_ = "additionalProperties" in schema or schema.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in schema and not open_:
        out["additionalProperties"] = False
    if schema.get("nullable") and "type" in schema:
        out["type"] = [schema["type"], "null"]
    return out


@functools.cache
def _crd_validators() -> dict[tuple[str, str], jsonschema.Draft4Validator]:
    """(apiVersion, kind) -> a validator, for every served version of the vendored CRDs."""
    validators = {}
    for path in sorted(CNPG_CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        assert crd["kind"] == "CustomResourceDefinition", path
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version["served"]:
                schema = structural(version["schema"]["openAPIV3Schema"])
                jsonschema.Draft4Validator.check_schema(schema)
                validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft4Validator(
                    schema
                )
    return validators


def crd_errors(obj: dict[str, Any]) -> list[str]:
    validator = _crd_validators().get((obj["apiVersion"], obj["kind"]))
    name = f"{obj['kind']} {obj.get('metadata', {}).get('name')}"
    if validator is None:
        return [f"{name}: no served CRD version for {obj['apiVersion']}"]
    return [
        f"{name}: .{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    ]


def test_the_vendored_crds_are_cnpgs_clusters_and_scheduled_backups() -> None:
    assert set(_crd_validators()) >= {
        ("postgresql.cnpg.io/v1", "Cluster"),
        ("postgresql.cnpg.io/v1", "ScheduledBackup"),
    }


def test_cnpg_objects_match_their_crds() -> None:
    objs = _kustomize(DEPLOY / "postgres", "deploy/postgres")
    assert sorted(o["kind"] for o in objs) == ["Cluster", "ScheduledBackup"]
    errors = [error for obj in objs for error in crd_errors(obj)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    ("path", "key"),
    [
        (("spec",), "minSyncReplica"),
        (("spec", "affinity"), "topologykey"),
        (("spec", "backup", "barmanObjectStore", "wal"), "compresion"),
    ],
)
def test_the_crd_validation_rejects_a_misspelt_key(path: tuple[str, ...], key: str) -> None:
    cluster = copy.deepcopy(_postgres()["Cluster"])
    node = cluster
    for part in path:
        node = node[part]
    node[key] = 1
    errors = crd_errors(cluster)
    assert len(errors) == 1, errors
    assert repr(key) in errors[0], errors


# --- NATS: our values against the chart's ---------------------------------------------------


@functools.cache
def _chart_defaults() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(NATS_CHART_VALUES.read_text())
    return loaded


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string"


def unknown_values(ours: Any, chart: Any, path: str = "") -> list[str]:
    """Where ``ours`` leaves the chart's values: a key it does not have, or another shape.

    A map the chart defaults to ``{}`` is the user's (merge blocks, env, spread
    constraints): what is in it is not the chart's structure. A ``null`` default (an
    optional name, class or size) takes any scalar.
    """
    if chart is None:
        return (
            []
            if _shape(ours) not in ("map", "list")
            else [f"{path}: a scalar, not a {_shape(ours)}"]
        )
    if _shape(ours) != _shape(chart):
        return [f"{path}: a {_shape(chart)} in the chart, a {_shape(ours)} here"]
    if not isinstance(ours, dict) or not chart:
        return []
    problems = []
    for key, value in ours.items():
        sub = f"{path}.{key}" if path else key
        if key not in chart:
            problems.append(f"{sub}: not a value of chart {NATS_CHART_VERSION}")
        else:
            problems.extend(unknown_values(value, chart[key], sub))
    return problems


def test_the_chart_version_validated_against_is_the_one_pinned() -> None:
    pin = f"--version {NATS_CHART_VERSION}"
    assert pin in VALUES.read_text()
    assert pin in (DEPLOY / "README.md").read_text()
    assert _chart_defaults()["container"]["image"]["tag"] == f"{NATS_CHART_VERSION}-alpine"


def test_nats_values_are_the_charts() -> None:
    problems = unknown_values(_values(), _chart_defaults())
    assert not problems, "\n".join(problems)


def test_the_chart_check_rejects_a_wrong_path() -> None:
    values = _values()
    values["config"]["jetstream"]["fileStorage"] = {"enabled": True}
    values["config"]["cluster"]["replicas"] = "3"
    values["podDisruptionBudget"]["maxUnavailable"] = 1
    assert set(unknown_values(values, _chart_defaults())) >= {
        "config.cluster.replicas: a number in the chart, a string here",
        f"config.jetstream.fileStorage: not a value of chart {NATS_CHART_VERSION}",
        f"podDisruptionBudget.maxUnavailable: not a value of chart {NATS_CHART_VERSION}",
    }


def _merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Sprig's ``mergeOverwrite``, as the chart's ``nats.loadMergePatch`` applies merges."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _nats_selector_labels() -> dict[str, str]:
    """The chart's ``nats.selectorLabels`` for our release."""
    return {
        "app.kubernetes.io/name": "nats",
        "app.kubernetes.io/instance": NATS_RELEASE,
        "app.kubernetes.io/component": "nats",
    }


def _nats_pod(values: dict[str, Any]) -> dict[str, Any]:
    """A pod as files/stateful-set/pod-template.yaml builds it, reduced to what we set."""
    selector = {"matchLabels": _nats_selector_labels()}
    pod_template = values["podTemplate"]
    spread = [
        {**constraint, "topologyKey": key, "labelSelector": selector}
        for key, constraint in pod_template["topologySpreadConstraints"].items()
    ]
    template = {
        "metadata": {"labels": _nats_selector_labels()},
        "spec": {
            "containers": [
                {"name": "nats", "image": f"nats:{_chart_defaults()['container']['image']['tag']}"}
            ],
            "topologySpreadConstraints": spread,
        },
    }
    merged = _merge(template, pod_template["merge"])
    return {"apiVersion": "v1", "kind": "Pod", **_merge({"metadata": {"name": "nats-0"}}, merged)}


def _nats_pdb(values: dict[str, Any]) -> dict[str, Any]:
    """The PodDisruptionBudget as files/pod-disruption-budget.yaml builds it, merged."""
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "nats"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _nats_selector_labels()}},
    }
    return _merge(pdb, values["podDisruptionBudget"].get("merge", {}))


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_nats_kubernetes_merges_are_valid_kubernetes(version: str) -> None:
    values = _values()
    errors = []
    for obj in (_nats_pod(values), _nats_pdb(values)):
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            errors.append(f"the chart's {obj['kind']} with our values: .{path}: {e.message}")
    assert not errors, "\n".join(errors)


# --- What the topology needs ----------------------------------------------------------------


def test_nats_is_three_servers_with_fsynced_file_storage() -> None:
    config = _values()["config"]
    assert config["cluster"] == {"enabled": True, "replicas": 3}
    js = config["jetstream"]
    assert js["enabled"] is True
    assert js["fileStore"]["enabled"] is True
    assert js["fileStore"]["pvc"]["enabled"] is True
    assert js["memoryStore"]["enabled"] is False
    assert js["merge"]["sync_interval"] == "always"
    assert config["merge"]["max_payload"] == "8MB"


def test_nats_servers_never_share_a_node_or_a_zone_and_one_at_a_time_may_go() -> None:
    values = _values()
    pod = values["podTemplate"]
    spread = pod["topologySpreadConstraints"]
    for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname"):
        assert spread[key] == {"maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"}, key
    (required,) = pod["merge"]["spec"]["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert required["topologyKey"] == "kubernetes.io/hostname"
    # It must select the chart's pods, or it keeps nothing apart.
    assert required["labelSelector"]["matchLabels"].items() <= _nats_selector_labels().items()
    assert values["podDisruptionBudget"]["enabled"] is True
    assert values["podDisruptionBudget"]["merge"]["spec"] == {"maxUnavailable": 1}


def test_prod_names_every_nats_pod_and_r3_streams() -> None:
    for overlay in ("prod", "prod-keda"):
        config = config_of(render(overlay))
        assert config["NATS_STREAM_REPLICAS"] == "3", overlay
        servers = bus.server_urls(config["NATS_URL"])
        hosts = [urlsplit(s).hostname for s in servers]
        assert hosts == [f"nats-{i}.nats-headless.nats.svc.cluster.local" for i in range(3)]
        assert {urlsplit(s).port for s in servers} == {4222}


def test_cnpg_cluster_is_three_instances_with_a_synchronous_standby() -> None:
    cluster = _postgres()["Cluster"]
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster["metadata"]["name"] == "jobs-db"
    assert cluster["metadata"]["namespace"] == "durable-jobs"
    spec = cluster["spec"]
    assert spec["instances"] == 3
    assert spec["minSyncReplicas"] == 1
    assert spec["minSyncReplicas"] <= spec["maxSyncReplicas"] < spec["instances"]
    params = spec["postgresql"]["parameters"]
    assert params["synchronous_commit"] == "on"
    assert params["log_statement"] == "none"
    assert params["log_parameter_max_length"] == "0"
    assert int(params["max_connections"]) >= 200
    assert spec["affinity"]["enablePodAntiAffinity"] is True
    assert spec["affinity"]["podAntiAffinityType"] == "required"
    assert spec["affinity"]["topologyKey"] == "topology.kubernetes.io/zone"
    assert spec["enablePDB"] is True
    assert spec["bootstrap"]["initdb"] == {"database": "jobs", "owner": "jobs"}


def test_cnpg_backups_are_declared() -> None:
    objs = _postgres()
    backup = objs["Cluster"]["spec"]["backup"]
    store = backup["barmanObjectStore"]
    assert store["destinationPath"].startswith("s3://")
    assert store["wal"]["compression"]
    creds = store["s3Credentials"]
    assert creds["accessKeyId"]["name"] == creds["secretAccessKey"]["name"]
    assert backup["retentionPolicy"].endswith("d")
    scheduled = objs["ScheduledBackup"]
    assert scheduled["spec"]["cluster"]["name"] == objs["Cluster"]["metadata"]["name"]
    assert len(scheduled["spec"]["schedule"].split()) == 6  # CNPG's cron has seconds


def test_the_services_reach_the_primary_through_cnpg_rw() -> None:
    readme = (DEPLOY / "README.md").read_text()
    assert "jobs-db-rw" in readme
    dev = yaml.safe_load((DEPLOY / "overlays" / "dev" / "kustomization.yaml").read_text())
    (secret,) = dev["secretGenerator"]
    url = next(v for v in secret["literals"] if v.startswith("DATABASE_URL="))
    assert str(urlsplit(url.split("=", 1)[1]).hostname).startswith("jobs-db-rw.")
    header = (DEPLOY / "postgres" / "cluster.yaml").read_text()
    assert "target_session_attrs=read-write" in header
