"""A builder that gives its deployment a runtime_env must carry the application's env_vars into it.

Serve's build_app applies the application's runtime_env (where ``deployments.deploy`` puts every
CALLCOV_* setting and secret) only to deployments without a runtime_env of their own; a deployment
with one gets nothing of the application's. The api and dispatcher builders set env_vars (pool sizes,
the served model), so without the merge their replicas ran on default settings (SQLite, no Redis, the
default LLM URL). Found by the simulated cluster (scripts/cluster_sim.py), which deploys with
deployments.deploy; the cluster test checks it for real."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from deployments import inference
from deployments.db_pools import PoolArgs


def test_the_applications_env_vars_reach_a_deployment_with_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    app_env = {"CALLCOV_DB__URL": "postgresql://db/callcov", "CALLCOV_DB__POOL_SIZE": "99"}
    monkeypatch.setattr(inference.ray, "is_initialized", lambda: True)
    monkeypatch.setattr(
        inference.ray, "get_runtime_context", lambda: SimpleNamespace(runtime_env={"env_vars": app_env})
    )
    options = inference.replica_options(0.5, PoolArgs(pool_size=3, max_overflow=6), "m")
    env = options["runtime_env"]["env_vars"]
    assert env["CALLCOV_DB__URL"] == "postgresql://db/callcov"
    assert env["CALLCOV_DB__POOL_SIZE"] == "3", "the deployment's own value wins"
    assert env["CALLCOV_INFERENCE__LLM_MODEL"] == "m"


def test_outside_ray_only_the_deployments_own_env_vars() -> None:
    options = inference.replica_options(0.5, None, "m")
    assert options["runtime_env"]["env_vars"] == {
        "CALLCOV_INFERENCE__LLM_MODEL": "m",
        "CALLCOV_INFERENCE__CHECK_LLM": "true",
    }
