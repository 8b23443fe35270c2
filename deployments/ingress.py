"""The API ingress: the FastAPI app from ``callcov.main.create_app``, built on each replica."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, Field, model_validator
from ray import serve
from ray.serve import Application

from callcov.config import Settings, get_settings
from deployments.db_pools import PoolArgs, check_pool_budget, max_replicas
from deployments.inference import replica_options
from deployments.metrics import install_ray_metrics


class IngressArgs(BaseModel):
    """Typed ``args`` of the ``api`` application in ``configs/*.yaml`` (no secrets here: those come from
    the environment, read by ``callcov.config``)."""

    name: str = "api"
    max_ongoing_requests: int = Field(default=256, ge=1)
    # None: 1 unless autoscaling_config is set; "auto": Serve's autoscaling defaults (up to 100 replicas)
    # updated by autoscaling_config.
    num_replicas: int | Literal["auto"] | None = None
    autoscaling_config: dict[str, Any] | None = None
    num_cpus: float = Field(default=0.25, ge=0)
    # The model the `llm` app serves (a YAML anchor in the config): /health checks it is served.
    llm_model: str | None = None
    # Each replica's database pool; set by deployments.deploy / deployments.kuberay from the replica counts.
    db_pool: PoolArgs | None = None

    @model_validator(mode="after")
    def _one_scaling_mode(self) -> IngressArgs:
        if isinstance(self.num_replicas, int) and self.autoscaling_config is not None:
            raise ValueError("set num_replicas or autoscaling_config, not both")
        return self

    @property
    def max_replicas(self) -> int:
        return max_replicas(self.model_dump(include={"num_replicas", "autoscaling_config"}))


ARGS_MODEL = IngressArgs


class SharedStateError(ValueError):
    """Several API replicas would each keep their own rate-limit counters."""


def check_shared_state(options: IngressArgs, settings: Settings) -> None:
    """Rate limits are counted in Redis, or in-process without it: more than one replica without
    Redis would multiply every limit by the replica count."""
    if options.max_replicas > 1 and not settings.redis.url:
        raise SharedStateError(
            f"application {options.name!r} may run up to {options.max_replicas} replicas, which must share "
            "rate limits through Redis: set CALLCOV_REDIS__URL, or run one replica"
        )


def build_asgi_app() -> FastAPI:
    """Called by Serve on each replica, so middleware, DB pools and clients are never pickled."""
    from callcov.main import create_app

    install_ray_metrics()
    return create_app()


def build_app(args: dict[str, Any] | None = None) -> Application:
    """Serve builder (``import_path: deployments.ingress:build_app``). Runs at deploy time with the
    application's environment, so a missing Redis or an oversized pool fails the deploy."""
    options = IngressArgs.model_validate(args or {})
    settings = get_settings()
    check_shared_state(options, settings)
    check_pool_budget(options.name, options.max_replicas, options.db_pool, settings.db)
    actor_options = replica_options(options.num_cpus, options.db_pool, options.llm_model)
    ingress_cls = serve.ingress(build_asgi_app)()
    scaling: dict[str, Any] = {"num_replicas": options.num_replicas or 1}
    if options.autoscaling_config is not None:
        scaling = {"autoscaling_config": options.autoscaling_config}
        if options.num_replicas == "auto":
            scaling["num_replicas"] = "auto"
    deployment = serve.deployment(
        ingress_cls,
        name=options.name,
        max_ongoing_requests=options.max_ongoing_requests,
        ray_actor_options=actor_options,
        **scaling,
    )
    return deployment.bind()
