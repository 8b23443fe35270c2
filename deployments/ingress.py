"""The API ingress: the FastAPI app from ``callcov.main.create_app``, built on each replica."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field
from ray import serve
from ray.serve import Application

from deployments.inference import llm_actor_options


class IngressArgs(BaseModel):
    """Typed ``args`` of the ``api`` application in ``configs/*.yaml`` (no secrets here: those come from
    the environment, read by ``callcov.config``)."""

    name: str = "api"
    max_ongoing_requests: int = Field(default=256, ge=1)
    num_replicas: int | str = 1
    num_cpus: float = Field(default=0.25, ge=0)
    # The model the `llm` app serves (a YAML anchor in the config): /health checks it is served.
    llm_model: str | None = None


ARGS_MODEL = IngressArgs


def build_asgi_app() -> FastAPI:
    """Called by Serve on each replica, so middleware, DB pools and clients are never pickled."""
    from callcov.main import create_app

    return create_app()


def build_app(args: dict[str, Any] | None = None) -> Application:
    """Serve builder (``import_path: deployments.ingress:build_app``)."""
    options = IngressArgs.model_validate(args or {})
    ingress_cls = serve.ingress(build_asgi_app)()
    deployment = serve.deployment(
        ingress_cls,
        name=options.name,
        max_ongoing_requests=options.max_ongoing_requests,
        num_replicas=options.num_replicas,
        ray_actor_options={"num_cpus": options.num_cpus, **llm_actor_options(options.llm_model)},
    )
    return deployment.bind()
