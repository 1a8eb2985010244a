"""Offline checks of the clustered backends' manifests: the NATS chart's values
(deploy/nats/values.yaml), the CloudNativePG Cluster (deploy/postgres, rendered with the
venv's ``kubectl kustomize``) and prod's settings pointing at both.

No CNPG CRD schema is available offline (neither PyPI nor npm ships one), so the Cluster
is checked field by field here: its spec keys against the fields of CNPG's
``ClusterSpec`` this file knows (a misspelt key fails), then what the topology needs.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import yaml

from jobkit import bus
from tests.unit.test_deploy import DEPLOY, _kustomize, config_of, render

VALUES = DEPLOY / "nats" / "values.yaml"

#: The fields of CNPG's ``ClusterSpec`` (postgresql.cnpg.io/v1) these manifests may use.
CNPG_CLUSTER_FIELDS = {
    "instances",
    "imageName",
    "primaryUpdateStrategy",
    "primaryUpdateMethod",
    "failoverDelay",
    "switchoverDelay",
    "minSyncReplicas",
    "maxSyncReplicas",
    "postgresql",
    "bootstrap",
    "storage",
    "walStorage",
    "affinity",
    "enablePDB",
    "monitoring",
    "backup",
    "resources",
    "description",
    "superuserSecret",
    "enableSuperuserAccess",
    "startDelay",
    "stopDelay",
    "smartShutdownTimeout",
    "logLevel",
    "topologySpreadConstraints",
}


def _values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(VALUES.read_text())
    return loaded


def _postgres() -> dict[str, dict[str, Any]]:
    objs = _kustomize(DEPLOY / "postgres", "deploy/postgres")
    return {o["kind"]: o for o in objs}


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
    assert required["labelSelector"]["matchLabels"]["app.kubernetes.io/name"] == "nats"
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


def test_cnpg_cluster_fields_are_known() -> None:
    spec = _postgres()["Cluster"]["spec"]
    assert set(spec) <= CNPG_CLUSTER_FIELDS, set(spec) - CNPG_CLUSTER_FIELDS


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
