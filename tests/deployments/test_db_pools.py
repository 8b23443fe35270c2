"""Database pools sized from the replica counts, the pool budget and the Redis requirement of the
builders (no Serve start: the builders only build the Application graph)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from callcov.config import DatabaseSettings, Settings, get_settings
from callcov.db import create_engine
from deployments import dispatcher, ingress
from deployments.db_pools import (
    PoolArgs,
    PoolBudgetError,
    apply_pools,
    check_pool_budget,
    max_replicas,
    plan_pools,
)

GPU_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "serve.gpu.yaml"
PG_URL = "postgresql://callcov@db.internal:5432/callcov"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The builders read ``get_settings()``: a clean CALLCOV_* environment, cache cleared around."""
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def gpu_config() -> dict[str, Any]:
    return yaml.safe_load(GPU_CONFIG.read_text())


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, 1),
        ({"num_replicas": 3}, 3),
        ({"num_replicas": "auto"}, 100),  # Serve's default for "auto"
        ({"num_replicas": "auto", "autoscaling_config": {"max_replicas": 6}}, 6),
        ({"autoscaling_config": {"min_replicas": 1, "max_replicas": 5}}, 5),
    ],
)
def test_max_replicas(args: dict[str, Any], expected: int) -> None:
    assert max_replicas(args) == expected


def test_gpu_config_pools_fit_the_default_budget() -> None:
    budget = DatabaseSettings().connection_budget  # 100 - 10
    plan = plan_pools(gpu_config(), budget)
    assert set(plan) == {"api", "dispatcher"}  # whisper and llm open no database
    apps = {a["name"]: a["args"] for a in gpu_config()["applications"]}
    total = sum(max_replicas(apps[name]) * pool.connections for name, pool in plan.items())
    assert total <= budget
    assert all(pool.pool_size >= 1 and pool.connections >= 2 for pool in plan.values())
    # The old fixed 10 + 20 per replica would not have fitted.
    assert sum(max_replicas(apps[name]) for name in plan) * 30 > budget


def test_bigger_budget_bigger_pools_capped_at_the_default() -> None:
    small, big, huge = (plan_pools(gpu_config(), b)["api"].connections for b in (30, 90, 10_000))
    assert small < big <= huge == 30


def test_budget_too_small_is_a_clear_error() -> None:
    with pytest.raises(PoolBudgetError, match=r"6 replicas \(api: 4, dispatcher: 2\) cannot share 10"):
        plan_pools(gpu_config(), 10)


def test_apply_pools_sets_db_pool_args_without_touching_the_source() -> None:
    config = gpu_config()
    applied = apply_pools(config, 90)
    args = {a["name"]: a.get("args") or {} for a in applied["applications"]}
    assert PoolArgs.model_validate(args["api"]["db_pool"]) == plan_pools(config, 90)["api"]
    assert "db_pool" not in args["whisper"] and "db_pool" not in args["llm"]
    assert all("db_pool" not in (a.get("args") or {}) for a in config["applications"])


def test_builders_hand_the_pool_to_their_replicas(env: pytest.MonkeyPatch) -> None:
    env.setenv("CALLCOV_REDIS__URL", "redis://127.0.0.1:6379/0")
    pool = {"pool_size": 2, "max_overflow": 3}
    for module, args in ((ingress, {"num_replicas": 2}), (dispatcher, {"num_replicas": 2})):
        deployment = module.build_app({**args, "db_pool": pool})._bound_deployment
        assert deployment.ray_actor_options["runtime_env"]["env_vars"] == {
            "CALLCOV_DB__POOL_SIZE": "2",
            "CALLCOV_DB__MAX_OVERFLOW": "3",
        }
        assert "runtime_env" not in module.build_app(args)._bound_deployment.ray_actor_options


def test_builder_refuses_an_app_that_alone_exceeds_the_budget(env: pytest.MonkeyPatch) -> None:
    env.setenv("CALLCOV_DB__URL", PG_URL)
    env.setenv("CALLCOV_DB__MAX_CONNECTIONS", "50")
    with pytest.raises(PoolBudgetError, match="'dispatcher': up to 2 replicas x 30 connections"):
        dispatcher.build_app({"num_replicas": 2})  # default 10 + 20 each
    dispatcher.build_app({"num_replicas": 2, "db_pool": {"pool_size": 5, "max_overflow": 10}})
    check_pool_budget("api", 10, None, DatabaseSettings())  # SQLite: no server limit


def test_engine_uses_the_pool_settings() -> None:
    settings = Settings(db=DatabaseSettings(url=PG_URL, pool_size=3, max_overflow=4))
    engine = create_engine(settings)
    assert (engine.sync_engine.pool.size(), engine.sync_engine.pool._max_overflow) == (3, 4)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "args",
    [
        {"num_replicas": 2},
        {"num_replicas": "auto"},
        {"autoscaling_config": {"min_replicas": 1, "max_replicas": 3}},
    ],
)
def test_several_api_replicas_need_redis(env: pytest.MonkeyPatch, args: dict[str, Any]) -> None:
    env.delenv("CALLCOV_REDIS__URL", raising=False)
    with pytest.raises(ingress.SharedStateError, match="CALLCOV_REDIS__URL"):
        ingress.build_app(args)
    env.setenv("CALLCOV_REDIS__URL", "redis://127.0.0.1:6379/0")
    get_settings.cache_clear()
    ingress.build_app(args)


def test_one_api_replica_needs_no_redis(env: pytest.MonkeyPatch) -> None:
    env.delenv("CALLCOV_REDIS__URL", raising=False)
    ingress.build_app({"num_replicas": 1})
    ingress.build_app({"autoscaling_config": {"min_replicas": 0, "max_replicas": 1}})


def test_ingress_scaling_modes_are_exclusive() -> None:
    with pytest.raises(ValueError, match="not both"):
        ingress.IngressArgs.model_validate({"num_replicas": 2, "autoscaling_config": {"max_replicas": 3}})
