"""A multi-node Ray cluster on this machine, with Ray's fake multi-node autoscaler
(``ray.autoscaler._private.fake_multi_node``: every "node" is a raylet process here, launched and
terminated by the autoscaler like a cloud VM), for ``scripts/cluster_sim.py``.

Built on ``ray.cluster_utils.AutoscalingCluster``, with three changes that a shared machine needs:

- its ``start``/``shutdown`` run ``ray stop --force``, which kills every Ray process of the user (other
  clusters included); here only the processes of this cluster are ended, found by its own temp dir;
- its head takes the default GCS port 6379 (Redis's here); here a free port, and free dashboard and
  agent ports, so several clusters can share the machine;
- Ray 2.60's wheel lacks ``fake_multi_node/example.yaml``, which both ``AutoscalingCluster`` and the
  ``fake_multinode`` provider type read for their defaults; here the same provider class is named
  through ``type: external``, whose defaults are built in.

The node types are ``ray-cluster.yaml``'s, resources included (GPUs, ``whisper``, ``llm``,
``accelerator_type:L40S``), with small ``max_workers``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from ray.autoscaler._private.fake_multi_node.node_provider import FakeMultiNodeProvider
from ray.autoscaler.tags import (
    NODE_KIND_WORKER,
    STATUS_UP_TO_DATE,
    TAG_RAY_NODE_KIND,
    TAG_RAY_NODE_NAME,
    TAG_RAY_NODE_STATUS,
    TAG_RAY_USER_NODE_TYPE,
)
from ray.cluster_utils import AutoscalingCluster

ROOT = Path(__file__).resolve().parents[1]
# The autoscaler (monitor process) imports the provider by this name; PYTHONPATH gets scripts/.
PROVIDER = "sim_cluster.TolerantFakeProvider"
HEAD_TYPE = "ray.head.default"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def node_types(
    max_workers: dict[str, int], min_workers: dict[str, int] | None = None
) -> tuple[dict[str, float], dict[str, Any]]:
    """The head's resources and the worker node types of ``ray-cluster.yaml`` (its resources, the given
    worker bounds). Only the types named in ``max_workers`` are kept."""
    cluster = yaml.safe_load((ROOT / "ray-cluster.yaml").read_text())
    types = cluster["available_node_types"]
    head = dict(types[cluster["head_node_type"]]["resources"])
    workers = {
        name: {
            "resources": dict(types[name]["resources"]),
            "node_config": {},
            "min_workers": (min_workers or {}).get(name, 0),
            "max_workers": count,
        }
        for name, count in max_workers.items()
    }
    return head, workers


def node_type_of(resources: dict[str, float], is_head: bool) -> str:
    """Which ``ray-cluster.yaml`` type a node is, from the resources it registered with."""
    if is_head:
        return "head_cpu"
    if "whisper" in resources:
        return "gpu_whisper"
    if "llm" in resources:
        return "gpu_llm"
    return "cpu_worker"


class _NodeProcesses:
    """Stands for a fake node whose start timed out: its processes, found by the node id they carry."""

    def __init__(self, node_id: str, gcs_address: str) -> None:
        self.node_id, self.gcs_address = node_id, gcs_address

    def kill_all_processes(self, check_alive: bool = False, allow_graceful: bool = True) -> None:
        for pid in processes_of_node(self.node_id, self.gcs_address):
            _signal(pid, signal.SIGTERM if allow_graceful else signal.SIGKILL)


class TolerantFakeProvider(FakeMultiNodeProvider):
    """Ray's fake multi-node provider, except that a node whose start exceeds Ray's hard-coded 30 s
    (``ray._private.node.Node``; agents start slowly on a loaded 2-core machine) is kept: its raylet
    registers late, and it is terminated through its processes. Ray's provider would forget it while
    it kept running, and the autoscaler would count it nowhere."""

    def _create_node_with_resources_and_labels(self, node_config, tags, count, resources, labels):  # type: ignore[no-untyped-def]
        with self.lock:  # Ray's provider starts its nodes under this lock too
            node_id = f"fffffffffffffffffffffffffffffffffffffffffffffffffff{self._next_node_id + 1:05d}"
            try:
                super()._create_node_with_resources_and_labels(node_config, tags, count, resources, labels)
            except Exception:
                self._keep_late_node(node_id, tags)

    def _keep_late_node(self, node_id: str, tags: dict[str, str]) -> None:
        """Called from the ``except`` of a failed start: re-raises unless the node's processes run."""
        if node_id in self._nodes or not processes_of_node(node_id, self._gcs_address):
            raise  # noqa: PLE0704 - re-raises the start's exception
        all_tags = {
            TAG_RAY_NODE_KIND: NODE_KIND_WORKER,
            TAG_RAY_USER_NODE_TYPE: tags[TAG_RAY_USER_NODE_TYPE],
            TAG_RAY_NODE_NAME: node_id,
            TAG_RAY_NODE_STATUS: STATUS_UP_TO_DATE,
            **tags,
        }
        self._nodes[node_id] = {"tags": all_tags, "node": _NodeProcesses(node_id, self._gcs_address)}


def processes_of_node(node_id: str, gcs_address: str) -> list[int]:
    """The processes of one fake node of the cluster at ``gcs_address``: those that carry the node's id
    in their environment and the GCS address on their command line (the raylet), and every process
    below them (agents, workers). Fake node ids repeat across clusters, GCS addresses do not."""
    mark = f"RAY_OVERRIDE_NODE_ID_FOR_TESTING={node_id}".encode()
    roots = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if gcs_address.encode() in (entry / "cmdline").read_bytes() and mark in (
                entry / "environ"
            ).read_bytes().split(b"\0"):
                roots.append(int(entry.name))
        except OSError:
            continue
    return descendants(roots)


class SimCluster(AutoscalingCluster):
    def __init__(
        self,
        head_resources: dict[str, float],
        worker_node_types: dict[str, Any],
        *,
        idle_timeout_minutes: float,
        env: dict[str, str] | None = None,
    ) -> None:
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ccs-", dir="/tmp"))
        self.gcs_port = free_port()
        self.dashboard_port = free_port()
        self.env = dict(env or {})
        super().__init__(
            head_resources,
            worker_node_types,
            idle_timeout_minutes=idle_timeout_minutes,
            upscaling_speed=1.0,
        )

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def _generate_config(
        self, head_resources: dict, worker_node_types: dict, autoscaler_v2: bool = False, **config_kwargs: Any
    ) -> dict[str, Any]:
        types = {
            **worker_node_types,
            HEAD_TYPE: {"resources": head_resources, "node_config": {}, "max_workers": 0},
        }
        return {
            "cluster_name": f"callcov-sim-{self.gcs_port}",
            "max_workers": sum(t.get("max_workers", 0) for t in worker_node_types.values()),
            "provider": {
                "type": "external",
                "module": PROVIDER,
                "gcs_address": self.gcs_address,
                "use_node_id_as_ip": True,
                "disable_node_updaters": True,
                "disable_launch_config_check": True,
            },
            "available_node_types": types,
            "head_node_type": HEAD_TYPE,
            # What the launcher would run on a VM; nothing for a fake node (example.yaml's values).
            "docker": {},
            "auth": {},
            "file_mounts": {},
            "cluster_synced_files": [],
            "file_mounts_sync_continuously": False,
            "rsync_exclude": [],
            "rsync_filter": [],
            "initialization_commands": [],
            "setup_commands": [],
            "head_setup_commands": [],
            "worker_setup_commands": [],
            "head_start_ray_commands": [],
            "worker_start_ray_commands": [],
            **config_kwargs,
        }

    def start(self, _system_config: dict | None = None, override_env: dict | None = None) -> None:
        """``ray start --head`` with this cluster's ports and temp dir. Ray gives a new node 30 s to
        register, which its agents can miss on a loaded 2-core machine: then the attempt is cleaned up
        and repeated (3 tries)."""
        config = self.temp_dir / "autoscaling.json"
        config.write_text(json.dumps(self._config))
        env = {**os.environ, **self.env, **(override_env or {})}
        env.update({"AUTOSCALER_UPDATE_INTERVAL_S": "1", "RAY_FAKE_CLUSTER": "1"})
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "scripts"), env.get("PYTHONPATH")]))
        env.setdefault("RAY_AUTH_MODE", "disabled")  # loopback only, as callcov-serve does
        # Every fake node starts its own agents on the same cores: give them time on a loaded machine.
        env.setdefault("RAY_agent_register_timeout_ms", "300000")
        env.setdefault("RAY_raylet_start_wait_time_s", "120")
        for attempt in range(1, 4):
            done = subprocess.run(
                self._start_command(config), env=env, capture_output=True, text=True, cwd=ROOT, check=False
            )
            if done.returncode == 0:
                return
            self.shutdown()
            if attempt == 3:
                raise RuntimeError(f"ray start failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")

    def _start_command(self, config: Path) -> list[str]:
        head = dict(self._head_resources)
        cmd = [
            str(Path(sys.executable).parent / "ray"),
            "start",
            "--head",
            f"--autoscaling-config={config}",
            f"--port={self.gcs_port}",
            f"--temp-dir={self.temp_dir}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={self.dashboard_port}",
            f"--ray-client-server-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            f"--num-cpus={head.pop('CPU', 0)}",
            f"--num-gpus={head.pop('GPU', 0)}",
            "--disable-usage-stats",
        ]
        if head:
            cmd.append(f"--resources={json.dumps(head)}")
        return cmd

    def pids(self) -> list[int]:
        """This cluster's processes: each names the temp dir or the GCS address on its command line,
        or carries a node id of this cluster's provider in its environment (the fake workers)."""
        marks = (str(self.temp_dir).encode(), f":{self.gcs_port}".encode())
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if any(mark in cmdline for mark in marks):
                found.append(int(entry.name))
        return found

    def kill_node(self, node_id: str) -> list[int]:
        """Kill one fake node at once, as when a machine dies: SIGKILL to its raylet and every process
        below it (agents, the replicas' workers)."""
        victims = processes_of_node(node_id, self.gcs_address)
        for pid in victims:
            _signal(pid, signal.SIGKILL)
        return victims

    def shutdown(self, remove: bool = False) -> None:
        """End this cluster's processes (SIGTERM, then SIGKILL); ``remove`` also deletes its temp dir
        (the Ray logs)."""
        for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
            pids = self.pids()
            for pid in pids:
                _signal(pid, sig)
            deadline = time.monotonic() + wait_s
            while pids and time.monotonic() < deadline:
                pids = [pid for pid in pids if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
                time.sleep(0.2)
        if remove:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def descendants(roots: list[int]) -> list[int]:
    """``roots`` and every process below them."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.append(pid)
            todo.extend(children.get(pid, []))
    return found


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True
