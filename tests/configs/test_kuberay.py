"""The KubeRay manifest stays what ``python -m deployments.kuberay`` makes of configs/serve.gpu.yaml and
ray-cluster.yaml: editing either without regenerating fails here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from ray.serve.schema import ServeDeploySchema

from callcov.config import DatabaseSettings
from deployments import kuberay
from deployments.capacity import apply_slots
from deployments.db_pools import apply_pools

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "kuberay" / "rayservice.yaml"


def documents() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text())}


def test_manifest_is_the_generators_output() -> None:
    assert MANIFEST.read_text() == kuberay.render(), (
        "deploy/kuberay/rayservice.yaml is stale: python -m deployments.kuberay > deploy/kuberay/rayservice.yaml"
    )


def test_serve_config_is_serve_gpu_yaml_with_the_pools() -> None:
    serve = yaml.safe_load(documents()["RayService"]["spec"]["serveConfigV2"])
    source = yaml.safe_load((ROOT / "configs" / "serve.gpu.yaml").read_text())
    assert serve == apply_slots(apply_pools(source, DatabaseSettings().connection_budget))
    ServeDeploySchema.model_validate(serve)


def test_groups_mirror_the_cluster_launcher_node_types() -> None:
    cluster = yaml.safe_load((ROOT / "ray-cluster.yaml").read_text())
    spec = documents()["RayService"]["spec"]["rayClusterConfig"]
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    workers = {k: v for k, v in cluster["available_node_types"].items() if k != cluster["head_node_type"]}
    assert (
        set(groups)
        == {name.replace("_", "-") for name in workers}
        >= {"cpu-worker", "gpu-whisper", "gpu-llm"}
    )
    for name, node_type in workers.items():
        group = groups[name.replace("_", "-")]
        assert (group["minReplicas"], group["maxReplicas"]) == (
            node_type["min_workers"],
            node_type["max_workers"],
        )
        (pod_container,) = group["template"]["spec"]["containers"]
        limits = pod_container["resources"]["limits"]
        assert limits.get("nvidia.com/gpu") == (
            str(node_type["resources"]["GPU"]) if "GPU" in node_type["resources"] else None
        )
        custom = {k: v for k, v in node_type["resources"].items() if k not in ("CPU", "GPU")}
        raw = group["rayStartParams"].get("resources")
        assert (json.loads(json.loads(raw)) if raw else {}) == custom
        assert pod_container["envFrom"] == [{"secretRef": {"name": "callcov-env"}}]
    whisper_init = groups["gpu-whisper"]["template"]["spec"]["initContainers"]
    assert "deployments.fetch_weights fetch" in whisper_init[0]["command"][-1]


def test_dashboard_is_not_public_and_no_secret_is_in_the_manifest() -> None:
    docs = documents()
    head = docs["RayService"]["spec"]["rayClusterConfig"]["headGroupSpec"]
    assert head["serviceType"] == "ClusterIP"
    policy = docs["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"]["ray.io/node-type"] == "head"
    dashboard_rules = [r for r in policy["ingress"] if {"port": 8265} in r.get("ports", [])]
    assert dashboard_rules and all("from" in r for r in dashboard_rules)
    text = MANIFEST.read_text()
    for name in ("CALLCOV_DB__URL", "JWT_SECRET", "API_KEY_PEPPER", "LLM_API_KEY", "AWS_SECRET_ACCESS_KEY"):
        assert name not in text
