"""STAND-INS for the two GPU models, for the simulated cluster (``configs/serve.sim.yaml``,
``scripts/cluster_sim.py``, ``tests/cluster``). They are not models.

Each holds its replica slot for the time a GPU would take and answers what the real models answered
earlier on the same synthetic calls (``tests/fixtures/cluster/``, written by
``scripts/record_sim_fixtures.py`` with Whisper base and the packaged llama.cpp model):

- ``SimulatedWhisper`` has the whisper app's handle interface (``transcribe(TranscriptionRequest) ->
  Transcript``). It reads the WAV header of the dispatcher's copy of the audio, picks the recorded
  transcript of the call with the same channels and the nearest duration, and sleeps
  ``duration x rtf x time_scale`` seconds.
- ``SimulatedLLM`` serves the OpenAI-compatible routes (``GET /v1/models``, ``POST
  /v1/chat/completions``) under the served model's name. It sleeps ``service_s x time_scale`` and
  returns the completion recorded for the same messages (a SHA-256 of them); a prompt never recorded
  gets the first recorded reply, and the response says so (``x-callcov-sim: miss``).

Both sleep with ``asyncio.sleep``: the fake nodes of the simulated cluster share this machine's cores,
so a stand-in that burned CPU would measure the cores, not dispatch and autoscaling.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import wave
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve import Application

from callcov.inference.ports import InferenceError, TranscriptionRequest
from callcov.inference.transcript import Transcript

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = "tests/fixtures/cluster"


class Placement(BaseModel):
    """Replica counts and the resources a replica asks for (as in ``configs/serve.gpu.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    max_ongoing_requests: int = Field(default=1, ge=1)
    autoscaling_config: dict[str, Any] | None = None
    num_cpus: float = Field(default=1, ge=0)
    num_gpus: float = Field(default=0, ge=0)
    resources: dict[str, float] | None = None
    accelerator_type: str | None = None

    def deployment_options(self, name: str) -> dict[str, Any]:
        actor: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}
        if self.resources:
            actor["resources"] = self.resources
        if self.accelerator_type:
            actor["accelerator_type"] = self.accelerator_type
        scaling: dict[str, Any] = (
            {"autoscaling_config": self.autoscaling_config}
            if self.autoscaling_config is not None
            else {"num_replicas": 1}
        )
        return {
            "name": name,
            "max_ongoing_requests": self.max_ongoing_requests,
            "ray_actor_options": actor,
            **scaling,
        }


class SimWhisperArgs(Placement):
    name: str = "whisper"
    fixtures: str = f"{FIXTURES}/transcripts.json"
    # Seconds of a GPU slot per second of audio (the capacity model, docs/scaling.md).
    rtf: float = Field(default=0.05, gt=0)
    # Stretches every service time alike, so a short synthetic call holds a slot long enough to
    # measure; 1 is the capacity model's speed.
    time_scale: float = Field(default=1.0, gt=0)
    # Seconds from no replica to a serving one (required with min_replicas 0, deployments/capacity.py).
    cold_start_s: float | None = Field(default=None, gt=0)
    # A recording whose duration differs from the nearest fixture's by more is refused.
    max_duration_gap_s: float = Field(default=1.5, ge=0)


class SimLLMArgs(Placement):
    name: str = "llm"
    # The model id clients send and /v1/models lists (the YAML anchor of the config).
    model_id: str = "Qwen/Qwen2.5-7B-Instruct"
    fixtures: str = f"{FIXTURES}/llm.json"
    # Seconds one chat completion holds its slot (the capacity model's per-call latency).
    service_s: float = Field(default=5.0, gt=0)
    time_scale: float = Field(default=1.0, gt=0)


@cache
def load_fixture(relative: str) -> dict[str, Any]:
    path = Path(relative) if Path(relative).is_absolute() else ROOT / relative
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def messages_key(messages: Any) -> str:
    """What a recorded completion is found by: the SHA-256 of the request's messages."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def wav_shape(path: str) -> tuple[int, float]:
    """Channels and duration (s) from a WAV header; nothing is decoded."""
    with wave.open(path, "rb") as audio:
        return audio.getnchannels(), audio.getnframes() / audio.getframerate()


class SimulatedWhisper:
    """STAND-IN for ``deployments.whisper.WhisperTranscriber`` (same handle method)."""

    def __init__(self, args: SimWhisperArgs | dict[str, Any] | None = None) -> None:
        self.args = SimWhisperArgs.model_validate(args or {})
        self.calls = load_fixture(self.args.fixtures)["calls"]
        self.served = 0

    def recorded(self, channels: int, duration_s: float) -> dict[str, Any]:
        same = [call for call in self.calls if call["channels"] == channels]
        if not same:
            raise InferenceError(f"simulated whisper: no recorded call with {channels} channel(s)")
        nearest = min(same, key=lambda call: abs(call["duration_s"] - duration_s))
        if abs(nearest["duration_s"] - duration_s) > self.args.max_duration_gap_s:
            raise InferenceError(
                f"simulated whisper: no recorded call of about {duration_s:.1f} s "
                f"(nearest {nearest['name']}, {nearest['duration_s']:.1f} s)"
            )
        return nearest  # type: ignore[no-any-return]

    def service_s(self, duration_s: float) -> float:
        return duration_s * self.args.rtf * self.args.time_scale

    async def transcribe(self, request: TranscriptionRequest | dict[str, Any]) -> Transcript:
        req = TranscriptionRequest.model_validate(request)
        if not Path(req.audio_path).is_file():
            raise InferenceError(
                f"simulated whisper reads the dispatcher's copy: {req.audio_path} is missing"
            )
        channels, duration_s = wav_shape(req.audio_path)
        call = self.recorded(channels, duration_s)
        await asyncio.sleep(self.service_s(duration_s))
        self.served += 1
        return Transcript.model_validate(call["transcript"])

    def stats(self) -> dict[str, Any]:
        return {"served": self.served}


class SimulatedLLM:
    """STAND-IN for the ``llm`` app (vLLM on GPUs): the OpenAI-compatible routes, recorded answers."""

    def __init__(self, args: SimLLMArgs | dict[str, Any] | None = None) -> None:
        self.args = SimLLMArgs.model_validate(args or {})
        fixture = load_fixture(self.args.fixtures)
        self.replies: dict[str, dict[str, Any]] = {
            r["messages_sha256"]: r["reply"] for r in fixture["replies"]
        }
        self.fallback = fixture["replies"][0]["reply"]
        self.created = int(time.time())
        self.counts = {"hit": 0, "miss": 0}

    def __serve_build_asgi_app__(self) -> FastAPI:
        return self.build_asgi_app()

    def models(self) -> dict[str, Any]:
        model = {"id": self.args.model_id, "object": "model", "created": self.created, "owned_by": "callcov"}
        return {"object": "list", "data": [model]}

    async def complete(self, body: Any) -> JSONResponse:
        if not isinstance(body, dict) or body.get("model") not in (None, self.args.model_id):
            message = f"this stand-in serves `{self.args.model_id}`"
            error = {"message": message, "type": "invalid_request_error", "code": "model_not_found"}
            return JSONResponse({"error": error}, status_code=404)
        await asyncio.sleep(self.args.service_s * self.args.time_scale)
        reply = self.replies.get(messages_key(body.get("messages")))
        outcome = "hit" if reply is not None else "miss"
        self.counts[outcome] += 1
        content = {**(reply or self.fallback), "model": self.args.model_id, "created": int(time.time())}
        return JSONResponse(content, headers={"x-callcov-sim": outcome})

    def build_asgi_app(self) -> FastAPI:
        app = FastAPI(title="CallCov simulated LLM (stand-in)", docs_url=None, redoc_url=None)

        @app.get("/v1/models")
        async def list_models() -> dict[str, Any]:
            return self.models()

        @app.post("/v1/chat/completions")
        async def chat_completions(request: Request) -> JSONResponse:
            return await self.complete(json.loads(await request.body()))

        @app.get("/v1/sim/stats")
        async def stats() -> dict[str, int]:
            return dict(self.counts)

        return app


# Builder name -> its args model (tests/configs/test_serve_configs.py validates the configs with them).
ARGS_MODELS: dict[str, type[BaseModel]] = {
    "build_whisper_app": SimWhisperArgs,
    "build_llm_app": SimLLMArgs,
}
ARGS_MODEL = SimWhisperArgs


def build_whisper_app(args: dict[str, Any] | None = None) -> Application:
    """Serve builder: the whisper stand-in, placed like ``deployments.whisper:build_app``."""
    options = SimWhisperArgs.model_validate(args or {})
    deployment = serve.deployment(SimulatedWhisper, **options.deployment_options(options.name))
    return deployment.bind(options.model_dump())


def build_llm_app(args: dict[str, Any] | None = None) -> Application:
    """Serve builder: the LLM stand-in as a late-bound FastAPI ingress, placed like the vLLM app."""
    options = SimLLMArgs.model_validate(args or {})
    deployment = serve.deployment(serve.ingress()(SimulatedLLM), **options.deployment_options(options.name))
    return deployment.bind(options.model_dump())
