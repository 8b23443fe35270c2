"""Scale-out on a simulated multi-node cluster: backlog-driven autoscaling, no call lost when a node dies.

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/cluster_sim.py            # the full run (64 calls)
    .venv/bin/python scripts/cluster_sim.py --phases 6 8 4 --no-docs    # the short one (tests/cluster)

Starts Ray's fake multi-node autoscaler with ``ray-cluster.yaml``'s node types (``scripts/sim_cluster.py``),
deploys ``configs/serve.sim.yaml`` (model STAND-INS, ``deployments/simulated.py``) with
``deployments.deploy`` as an operator does, against a fresh PostgreSQL database, Redis, and moto's S3
server for the audio. Then, through the public API, it signs a user up and submits three phases of calls,
each with a webhook to a local receiver:

1. one model node of each kind: the model deployments capped at one node's replicas;
2. two: the caps lifted (a redeploy), the autoscaler adds nodes as the backlog grows;
3. a few more calls, and one gpu_whisper node is killed (SIGKILL to its raylet and workers) while they
   run: its requests fail and their jobs run again.

It samples every second queue depth, replicas, nodes and completions, waits for the idle GPU nodes to be
removed, checks every call (completed once, one usage record, one webhook event), writes the plot and
the figures (``docs/scaling-sim.png``, ``docs/scaling.md``) and exits 1 on a failed check.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import secrets
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "tests")]

from record_sim_fixtures import CALLS, render  # noqa: E402
from sim_cluster import SimCluster, free_port, node_type_of, node_types  # noqa: E402
from sim_report import Phase, Run, Sample, check, figures, plot, write_docs  # noqa: E402
from sim_service import (  # noqa: E402
    fresh_database,
    healthy,
    s3_server,
    served_in_thread,
    settings_env,
    sign_up,
    submit,
    wait_for,
)
from webhook_receiver import Receiver  # noqa: E402

CONFIG = ROOT / "configs" / "serve.sim.yaml"
MAX_WORKERS = {"cpu_worker": 1, "gpu_whisper": 3, "gpu_llm": 2}


def say(message: str) -> None:
    sys.stdout.write(f"[cluster-sim] {message}\n")
    sys.stdout.flush()


def per_node(args: dict[str, Any], resources: dict[str, float]) -> int:
    """How many replicas of an app fit on one node of the given resources."""
    need = {"CPU": args.get("num_cpus", 1), "GPU": args.get("num_gpus", 0), **(args.get("resources") or {})}
    return int(min(resources.get(name, 0) / amount for name, amount in need.items() if amount))


def phase_config(base: dict[str, Any], nodes: int, port: int) -> tuple[dict[str, Any], dict[str, int]]:
    """The config with each model deployment capped at ``nodes`` nodes' worth of replicas, through
    Serve's per-deployment override (a lightweight update: running replicas stay)."""
    config = copy.deepcopy(base)
    config["http_options"]["port"] = port
    _, workers = node_types(MAX_WORKERS)
    caps = {}
    for app, node_type in (("whisper", "gpu_whisper"), ("llm", "gpu_llm")):
        spec = next(a for a in config["applications"] if a["name"] == app)
        scaling = dict(spec["args"]["autoscaling_config"])
        scaling["max_replicas"] = min(
            scaling["max_replicas"], nodes * per_node(spec["args"], workers[node_type]["resources"])
        )
        scaling["initial_replicas"] = min(scaling.get("initial_replicas", 1), scaling["max_replicas"])
        spec["deployments"] = [{"name": app, "autoscaling_config": scaling}]
        caps[app] = scaling["max_replicas"]
    return config, caps


def deploy(config: dict[str, Any], env: dict[str, str], dashboard: str, folder: Path) -> None:
    from deployments import deploy as deploy_command

    path = folder / f"serve.sim.{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    # The first PUT starts Serve's controller, which can take longer than the command's 60 s on a loaded
    # machine; the PUT is declarative, so it is sent again.
    for _ in range(3):
        if deploy_command.main(["--config", str(path), "--address", dashboard], environ=env) == 0:
            return
    raise RuntimeError("deploy failed")


class Sampler:
    """Every second: analysis jobs waiting and running, completions (database), RUNNING replicas per
    deployment (Serve's REST API, what ``serve.status()`` reads) and alive nodes per type (Ray's state API)."""

    def __init__(self, db_url: str, dashboard: str, started: float) -> None:
        self.db_url, self.dashboard, self.started = db_url, dashboard, started
        self.samples: list[Sample] = []
        self.placement: dict[str, list[str]] = {}  # node id -> deployments with a RUNNING replica there
        self.node_types: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        with psycopg.connect(self.db_url, autocommit=True) as conn, httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                began = time.monotonic()
                with contextlib.suppress(Exception):
                    self.samples.append(self.sample(conn, client))
                self._stop.wait(max(0.0, 1.0 - (time.monotonic() - began)))

    def sample(self, conn: psycopg.Connection, client: httpx.Client) -> Sample:
        from ray.util.state import list_nodes

        jobs = dict(
            conn.execute(
                "SELECT status, count(*) FROM jobs WHERE kind LIKE 'analysis%%' GROUP BY status"
            ).fetchall()
        )
        completed = conn.execute("SELECT count(*) FROM analyses WHERE status = 'completed'").fetchone()
        nodes: dict[str, int] = {}
        for node in list_nodes(
            address=self.dashboard, filters=[("state", "=", "ALIVE")], raise_on_missing_output=False
        ):
            kind = node_type_of(node.resources_total, node.is_head_node)
            self.node_types[node.node_id] = kind
            nodes[kind] = nodes.get(kind, 0) + 1
        replicas: dict[str, int] = {}
        placement: dict[str, list[str]] = {}
        apps = client.get(f"{self.dashboard}/api/serve/applications/").json().get("applications", {})
        for app in apps.values():
            for name, deployment in app.get("deployments", {}).items():
                running = [r for r in deployment.get("replicas", []) if r.get("state") == "RUNNING"]
                replicas[name] = len(running)
                for replica in running:
                    placement.setdefault(replica.get("node_id", ""), []).append(name)
        self.placement = placement
        return Sample(
            t=round(time.time() - self.started, 2),
            queued=int(jobs.get("queued", 0)),
            running=int(jobs.get("running", 0)),
            completed=int(completed[0] if completed else 0),
            replicas=replicas,
            nodes=nodes,
        )


class Scenario:
    """One run: the cluster, the service deployed on it, a user, the phases of calls, the checks' data."""

    def __init__(self, phases: tuple[int, int, int], idle_timeout_min: float, folder: Path) -> None:
        self.calls_per_phase, self.folder = phases, folder
        self.run = Run()
        self.started = time.time()
        self.key = secrets.token_urlsafe(24)
        head, workers = node_types(MAX_WORKERS)
        self.cluster = SimCluster(
            head,
            workers,
            idle_timeout_minutes=idle_timeout_min,
            env={
                # Serve's proxies (one per node) guard /llm with the internal key (deployments/proxy.py).
                "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH": "deployments.proxy:proxy_middlewares",
                "CALLCOV_INFERENCE__LLM_API_KEY": self.key,
                "RAY_USAGE_STATS_ENABLED": "0",
                "HF_HUB_OFFLINE": "1",
                # Replicas and handles report their load every second (default 10 s), so that Serve
                # scales within the seconds a short simulation lasts.
                "RAY_SERVE_REPLICA_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "1",
                "RAY_SERVE_HANDLE_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "1",
            },
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base = yaml.safe_load(CONFIG.read_text())

    def t(self) -> float:
        return round(time.time() - self.started, 2)

    def execute(self, db_url: str, s3: str, receiver: Receiver, hook_url: str) -> Run:
        env = settings_env(db_url, s3, self.port, self.key, self.folder / "data")
        self.cluster.start()
        say(
            f"cluster up at {self.t():.0f} s (GCS {self.cluster.gcs_address}, temp dir {self.cluster.temp_dir})"
        )
        self.sampler = Sampler(db_url, self.cluster.dashboard_url, self.started)
        self.sampler.start()
        one, caps_one = phase_config(self.base, 1, self.port)
        deploy(one, env, self.cluster.dashboard_url, self.folder)
        wait_for("the service's /health", lambda: healthy(self.url), 600, 2)
        say(f"deployed and healthy at {self.t():.0f} s")
        headers = sign_up(self.url, db_url, receiver)
        audio = [render(name, self.folder) for name in CALLS]
        n = 0
        two, caps_two = phase_config(self.base, 2, self.port)
        for index, (calls, caps) in enumerate(
            zip(self.calls_per_phase, (caps_one, caps_two, caps_two), strict=True)
        ):
            if index == 1:
                deploy(two, env, self.cluster.dashboard_url, self.folder)
            phase = Phase(f"{index + 1}", self.t(), calls, caps["whisper"], caps)
            self.run.phases.append(phase)
            say(f"phase {phase.name}: {calls} calls, caps {caps}, at {phase.start:.0f} s")
            for _ in range(calls):
                phase.ids.append(submit(self.url, headers, audio[n % len(audio)].path, hook_url, n))
                n += 1
            if index == 2:
                self.kill_whisper_node()
            wait_for(f"phase {phase.name}", lambda p=phase: self.all_finished(db_url, p.ids), 900)
            phase.end = self.t()
        all_ids = [i for p in self.run.phases for i in p.ids]
        wait_for("webhook deliveries", lambda: set(all_ids) <= delivered_ids(receiver), 120)
        say(f"all {n} calls completed and delivered at {self.t():.0f} s; waiting for the idle nodes to go")
        self.run.scaled_down_at = self.wait_scaled_down()
        self.sampler.stop()
        self.collect(db_url, receiver, all_ids)
        return self.run

    def kill_whisper_node(self) -> None:
        """SIGKILL a gpu_whisper node that runs a whisper replica, once its requests are in flight."""
        time.sleep(3)
        whisper = {
            node: deps.count("whisper")
            for node, deps in self.sampler.placement.items()
            if self.sampler.node_types.get(node) == "gpu_whisper"
        }
        victims = sorted((n for n, count in whisper.items() if count), key=lambda n: whisper[n])
        last = self.sampler.samples[-1]
        pids = self.cluster.kill_node(victims[-1])
        self.run.killed = {
            "node_id": victims[-1],
            "type": "gpu_whisper",
            "t": self.t(),
            "pids": len(pids),
            "in_flight": last.running,
        }
        say(
            f"killed gpu_whisper node {victims[-1][-6:]} ({len(pids)} processes) at {self.t():.0f} s, {last.running} jobs running"
        )

    def all_finished(self, db_url: str, ids: list[str]) -> bool:
        with psycopg.connect(db_url) as conn:
            rows = conn.execute(
                "SELECT id::text, status, extract(epoch from completed_at) FROM analyses WHERE id::text = ANY(%s)",
                (ids,),
            ).fetchall()
        for analysis_id, status, at in rows:
            self.run.statuses[analysis_id] = status
            if status == "completed" and at is not None:
                self.run.completions[analysis_id] = float(at) - self.started
        return sum(1 for _, status, _ in rows if status != "processing") == len(ids)

    def wait_scaled_down(self) -> float | None:
        minimum = {"gpu_whisper": 0, "gpu_llm": 1, "cpu_worker": 0}

        def down() -> bool:
            nodes = self.sampler.samples[-1].nodes
            return all(nodes.get(kind, 0) <= count for kind, count in minimum.items())

        try:
            wait_for("scale-down", down, 240)
        except TimeoutError:
            return None
        return self.t()

    def collect(self, db_url: str, receiver: Receiver, ids: list[str]) -> None:
        with psycopg.connect(db_url) as conn:
            usage = dict(
                conn.execute("SELECT analysis_id::text, count(*) FROM usage_records GROUP BY 1").fetchall()
            )
            events = dict(
                conn.execute("SELECT analysis_id::text, count(*) FROM webhook_events GROUP BY 1").fetchall()
            )
            self.run.llm_status = dict(
                conn.execute("SELECT coalesce(llm_status, ''), count(*) FROM analyses GROUP BY 1").fetchall()
            )
            attempts = conn.execute(
                "SELECT coalesce(max(attempts), 0) FROM jobs WHERE kind LIKE 'analysis%%'"
            ).fetchone()
        deliveries: dict[str, set[str]] = {}
        for item in receiver.received:
            if item.verified_by:
                deliveries.setdefault(item.json()["id"], set()).add(item.msg_id)
        for i in ids:
            self.run.per_call[i] = {
                "usage": usage.get(i, 0),
                "events": events.get(i, 0),
                "deliveries": len(deliveries.get(i, ())),
            }
        self.run.max_attempts = int(attempts[0]) if attempts else 0
        self.run.samples = list(self.sampler.samples)


def delivered_ids(receiver: Receiver) -> set[str]:
    return {item.json()["id"] for item in list(receiver.received) if item.verified_by}


def simulate(phases: tuple[int, int, int], idle_timeout_min: float = 0.2) -> Run:
    with tempfile.TemporaryDirectory(prefix="ccsim-") as tmp, fresh_database() as db_url, s3_server() as s3:
        receiver = Receiver()
        with served_in_thread(receiver) as hook:
            scenario = Scenario(phases, idle_timeout_min, Path(tmp))
            try:
                run = scenario.execute(db_url, s3, receiver, f"{hook}/callcov")
            finally:
                with contextlib.suppress(Exception):
                    scenario.sampler.stop()
                scenario.cluster.shutdown(remove=not os.environ.get("CALLCOV_SIM_KEEP_LOGS"))
                run = scenario.run
            run.wall_s = time.time() - scenario.started
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phases", type=int, nargs=3, default=(20, 36, 8), metavar=("ONE", "TWO", "KILL"))
    parser.add_argument("--min-ratio", type=float, default=1.6)
    parser.add_argument(
        "--no-docs", action="store_true", help="do not write docs/scaling-sim.png and docs/scaling.md"
    )
    parser.add_argument("--json", type=Path, help="also write the samples and figures here")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    run = simulate(tuple(args.phases))
    problems = check(run, min_ratio=args.min_ratio)
    say(json.dumps(figures(run), default=str))
    if args.json:
        args.json.write_text(
            json.dumps({"figures": figures(run), "samples": [vars(s) for s in run.samples]}, default=str)
        )
    if not args.no_docs:
        plot(run, ROOT / "docs" / "scaling-sim.png")
        write_docs(run, ROOT / "docs" / "scaling.md", "scaling-sim.png", problems)
    for problem in problems:
        say(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
