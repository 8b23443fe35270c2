"""The ``llm`` application: one OpenAI-compatible endpoint (``{route_prefix}/v1/chat/completions``).

- CPU (``import_path: deployments.llm:build_cpu_app``): llama.cpp in-process, see ``llm_cpu.py``.
- GPU (``import_path: deployments.llm:build_gpu_app``): vLLM through ``ray.serve.llm.build_openai_app``.
  ``ray.serve.llm`` needs vLLM (``ray[llm]``) at import time, so it is imported inside the builder only;
  on a CPU machine ``VLLMArgs`` (and ``VLLMArgs.llm_config()``) can still be validated.

The platform talks to both through ``callcov.inference.openai_client.OpenAICompatibleClient``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from ray import serve
from ray.serve import Application

from deployments.llm_cpu import LlamaCppArgs, LlamaCppServer

REMOTE_PREFIXES = ("s3://", "gs://", "abfss://", "azure://")

__all__ = [
    "ARGS_MODEL",
    "ARGS_MODELS",
    "GPU_ONLY_BUILDERS",
    "LlamaCppArgs",
    "LlamaCppServer",
    "VLLMArgs",
    "build_cpu_app",
    "build_gpu_app",
]


class VLLMArgs(BaseModel):
    """Typed ``args`` of the GPU ``llm`` application (an ``LLMConfig`` for ``ray.serve.llm``)."""

    model_config = ConfigDict(extra="forbid")

    # The model id clients send (and /v1/models lists).
    model_id: str = "Qwen/Qwen2.5-7B-Instruct"
    # Weights: an absolute local path or an object-store URI (s3://, gs://, abfss://, azure://); never a
    # hub id, since nothing is downloaded from a hub at run time.
    model_source: str
    tensor_parallel_size: int = Field(default=1, ge=1)
    max_model_len: int = Field(default=8192, ge=256)
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=1, ge=1)
    max_ongoing_requests: int = Field(default=64, ge=1)
    # Autoscaling, set explicitly (ray.serve.llm's own default target is far above any batch, so the app
    # would stay at min_replicas): add a replica when each holds more than this many requests. Keep it
    # at 1/2 to 3/4 of max_ongoing_requests, and max_ongoing_requests at vLLM's max_num_seqs (one batch).
    # None: 3/4 of max_ongoing_requests.
    target_ongoing_requests: float | None = Field(default=None, gt=0)
    upscale_delay_s: float = Field(default=30, ge=0)
    downscale_delay_s: float = Field(default=600, ge=0)
    # A Ray accelerator type (ray.util.accelerators), e.g. "L40S", "H100"; None: any GPU.
    accelerator_type: str | None = None
    # More vLLM engine arguments (e.g. {"enforce_eager": true, "dtype": "bfloat16"}).
    engine_kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("model_source")
    @classmethod
    def _local_or_object_store(cls, value: str) -> str:
        if value.startswith(REMOTE_PREFIXES) or value.startswith("/"):
            return value
        raise ValueError(
            f"model_source {value!r} must be an absolute local path or an object-store URI "
            f"({', '.join(REMOTE_PREFIXES)}); hub ids are not downloaded at run time"
        )

    @field_validator("accelerator_type")
    @classmethod
    def _known_accelerator(cls, value: str | None) -> str | None:
        if value is not None and value not in known_accelerator_types():
            raise ValueError(f"unknown accelerator_type {value!r} (see ray.util.accelerators)")
        return value

    @model_validator(mode="after")
    def _replicas_in_order(self) -> VLLMArgs:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        return self

    @model_validator(mode="after")
    def _target_within_a_batch(self) -> VLLMArgs:
        batch = self.engine_kwargs.get("max_num_seqs")
        if (self.target_ongoing_requests or 0) > self.max_ongoing_requests:
            raise ValueError("target_ongoing_requests must not exceed max_ongoing_requests")
        if batch is not None and self.max_ongoing_requests > batch:
            raise ValueError(
                f"max_ongoing_requests ({self.max_ongoing_requests}) exceeds vLLM's max_num_seqs ({batch}): "
                "requests past one batch would queue inside the engine instead of scaling out"
            )
        return self

    def autoscaling_config(self) -> dict[str, Any]:
        return {
            "min_replicas": self.min_replicas,
            "max_replicas": self.max_replicas,
            "target_ongoing_requests": self.target_ongoing_requests or 0.75 * self.max_ongoing_requests,
            "upscale_delay_s": self.upscale_delay_s,
            "downscale_delay_s": self.downscale_delay_s,
        }

    def llm_config(self) -> dict[str, Any]:
        """The ``ray.serve.llm.LLMConfig`` fields, as plain data."""
        source: str | dict[str, str] = self.model_source
        if self.model_source.startswith(REMOTE_PREFIXES):
            source = {"bucket_uri": self.model_source}
        engine_kwargs = {
            "tensor_parallel_size": self.tensor_parallel_size,
            "max_model_len": self.max_model_len,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            **self.engine_kwargs,
        }
        config: dict[str, Any] = {
            "model_loading_config": {"model_id": self.model_id, "model_source": source},
            "engine_kwargs": engine_kwargs,
            "deployment_config": {
                "autoscaling_config": self.autoscaling_config(),
                "max_ongoing_requests": self.max_ongoing_requests,
            },
            # Belt and braces: the engine must never reach for a hub.
            "runtime_env": {"env_vars": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}},
        }
        if self.accelerator_type is not None:
            config["accelerator_type"] = self.accelerator_type
        return config


def known_accelerator_types() -> set[str]:
    """Ray's accelerator type names (``ray.util.accelerators.accelerators``; no vLLM needed)."""
    from ray.util.accelerators import accelerators

    return {v for k, v in vars(accelerators).items() if k.isupper() and isinstance(v, str)}


# Builder name -> its args model. The config test validates each app's args with the model of its
# builder; builders in GPU_ONLY_BUILDERS need ray[llm] + vLLM, so on CPU only their args are validated.
ARGS_MODELS: dict[str, type[BaseModel]] = {"build_cpu_app": LlamaCppArgs, "build_gpu_app": VLLMArgs}
ARGS_MODEL = LlamaCppArgs
GPU_ONLY_BUILDERS = frozenset({"build_gpu_app"})


def build_cpu_app(args: dict[str, Any] | None = None) -> Application:
    """Serve builder for CPUs: ``LlamaCppServer`` as a late-bound FastAPI ingress."""
    options = LlamaCppArgs.model_validate(args or {})
    deployment = serve.deployment(
        serve.ingress()(LlamaCppServer),
        name=options.name,
        max_ongoing_requests=options.max_ongoing_requests,
        num_replicas=options.num_replicas,
        ray_actor_options={"num_cpus": options.num_cpus},
    )
    return deployment.bind(options.model_dump())


def build_gpu_app(args: dict[str, Any] | None = None) -> Application:
    """Serve builder for GPUs: vLLM behind Ray Serve LLM's OpenAI app (needs ``ray[llm]`` and vLLM)."""
    options = VLLMArgs.model_validate(args or {})
    from ray.serve.llm import LLMConfig, build_openai_app

    return build_openai_app({"llm_configs": [LLMConfig(**options.llm_config())]})
