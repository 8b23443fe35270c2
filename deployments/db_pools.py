"""Database connection pools sized from the replica counts of a Serve config.

Every replica of the ``api`` and ``dispatcher`` applications opens its own SQLAlchemy pool. With the
default 10 + 20 connections per replica, PostgreSQL's default ``max_connections`` of 100 runs out at
four replicas. ``plan_pools`` shares a connection budget (``CALLCOV_DB__MAX_CONNECTIONS`` minus
``CALLCOV_DB__RESERVED_CONNECTIONS``) among the most replicas each application may reach, and
``apply_pools`` writes each application's share into its ``args.db_pool``; the builders hand it to
their replicas as ``CALLCOV_DB__POOL_SIZE`` / ``CALLCOV_DB__MAX_OVERFLOW``. The deploy command
(``deployments.deploy``) and the KubeRay generator (``deployments.kuberay``) both apply it.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from callcov.config import DatabaseSettings

# The builders whose replicas open a database engine.
DB_BUILDERS = frozenset({"deployments.ingress:build_app", "deployments.dispatcher:build_app"})
# Fewer connections than this per replica would serialise every request on one connection.
MIN_PER_REPLICA = 2
# No replica needs more than the single-process default (10 + 20).
MAX_PER_REPLICA = 30


class PoolBudgetError(ValueError):
    """The replicas cannot share the connection budget."""


class PoolArgs(BaseModel):
    """One replica's pool (``args.db_pool`` of the ``api`` and ``dispatcher`` applications)."""

    model_config = ConfigDict(extra="forbid")

    pool_size: int = Field(ge=1)
    max_overflow: int = Field(ge=0)

    @property
    def connections(self) -> int:
        return self.pool_size + self.max_overflow

    def env_vars(self) -> dict[str, str]:
        return {
            "CALLCOV_DB__POOL_SIZE": str(self.pool_size),
            "CALLCOV_DB__MAX_OVERFLOW": str(self.max_overflow),
        }


def max_replicas(args: dict[str, Any]) -> int:
    """The most replicas an application's args allow (Serve's rules for ``num_replicas: auto``)."""
    num_replicas = args.get("num_replicas")
    scaling = args.get("autoscaling_config") or {}
    if num_replicas == "auto":
        from ray.serve.config import AutoscalingConfig

        return int(scaling.get("max_replicas", AutoscalingConfig.default().max_replicas))
    if scaling:
        return int(scaling.get("max_replicas", 1))
    return int(num_replicas or 1)


def pool_for(connections: int) -> PoolArgs:
    """A third kept open, the rest opened under load (the 10 + 20 ratio of the defaults)."""
    connections = min(connections, MAX_PER_REPLICA)
    pool_size = max(1, connections // 3)
    return PoolArgs(pool_size=pool_size, max_overflow=connections - pool_size)


def plan_pools(config: dict[str, Any], budget: int) -> dict[str, PoolArgs]:
    """Each database application's per-replica pool, so that all replicas at their maximum fit in
    ``budget`` connections. Raises ``PoolBudgetError`` when they cannot."""
    replicas = {
        app["name"]: max_replicas(app.get("args") or {})
        for app in config.get("applications", [])
        if app.get("import_path") in DB_BUILDERS
    }
    total = sum(replicas.values())
    if not total:
        return {}
    per_replica = budget // total
    if per_replica < MIN_PER_REPLICA:
        counts = ", ".join(f"{name}: {count}" for name, count in replicas.items())
        raise PoolBudgetError(
            f"{total} replicas ({counts}) cannot share {budget} database connections (at least "
            f"{MIN_PER_REPLICA} each): raise CALLCOV_DB__MAX_CONNECTIONS with the server's max_connections, "
            "lower the replicas' maximum, or put a connection pooler (PgBouncer) in front of PostgreSQL"
        )
    return {name: pool_for(per_replica) for name in replicas}


def apply_pools(config: dict[str, Any], budget: int) -> dict[str, Any]:
    """A copy of ``config`` with ``args.db_pool`` set on each database application."""
    plan = plan_pools(config, budget)
    config = copy.deepcopy(config)
    for app in config.get("applications", []):
        if app["name"] in plan:
            app["args"] = {**(app.get("args") or {}), "db_pool": plan[app["name"]].model_dump()}
    return config


def check_pool_budget(name: str, replicas: int, pool: PoolArgs | None, db: DatabaseSettings) -> None:
    """At build time, on the cluster: one application alone must fit in the budget. (The whole config
    is checked by ``plan_pools``; a builder only sees its own args.) SQLite has no server limit."""
    if not db.url or db.url.startswith("sqlite"):
        return
    per_replica = pool.connections if pool else db.pool_size + db.max_overflow
    if replicas * per_replica > db.connection_budget:
        raise PoolBudgetError(
            f"application {name!r}: up to {replicas} replicas x {per_replica} connections exceeds the "
            f"budget of {db.connection_budget} (CALLCOV_DB__MAX_CONNECTIONS - CALLCOV_DB__RESERVED_CONNECTIONS); "
            "deploy with `python -m deployments.deploy`, which sizes the pools from the replica counts"
        )
