"""The model STAND-INS of the simulated cluster (deployments/simulated.py) and the simulation's own
arithmetic, without a cluster: the stand-ins hold their slot for the configured service time and answer
what the real models recorded; the node types are ray-cluster.yaml's; the phase caps and the saturated
throughput are computed as documented."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import time
import wave
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from callcov.inference.ports import InferenceError, TranscriptionRequest
from deployments.simulated import (
    ROOT,
    SimulatedLLM,
    SimulatedWhisper,
    build_llm_app,
    build_whisper_app,
    load_fixture,
    messages_key,
)


def script(name: str) -> Any:
    sys.path.insert(0, str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def silent_wav(path: Path, channels: int, seconds: float) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\0\0" * channels * int(16000 * seconds))
    return path


def test_the_fixtures_were_recorded_from_the_real_models() -> None:
    calls = load_fixture("tests/fixtures/cluster/transcripts.json")
    replies = load_fixture("tests/fixtures/cluster/llm.json")
    assert "faster-whisper" in calls["recorded_with"] and "llama.cpp" in replies["recorded_with"]
    names = {call["name"] for call in calls["calls"]}
    record = script("record_sim_fixtures")
    assert names == set(record.CALLS)
    for call in calls["calls"]:
        assert call["transcript"]["segments"] and call["transcript"]["model"].startswith("faster-whisper")
    assert all(reply["reply"]["choices"][0]["message"]["content"] for reply in replies["replies"])


@pytest.mark.asyncio
async def test_the_whisper_stand_in_holds_its_slot_and_returns_the_recorded_transcript(
    tmp_path: Path,
) -> None:
    stand_in = SimulatedWhisper({"rtf": 0.02, "time_scale": 1})
    for call in stand_in.calls:
        audio = silent_wav(tmp_path / f"{call['name']}.wav", call["channels"], call["duration_s"])
        started = time.monotonic()
        transcript = await stand_in.transcribe(TranscriptionRequest(audio_path=str(audio)))
        assert time.monotonic() - started >= call["duration_s"] * 0.02 * 0.95
        # Recorded before transcripts carried their redactions (none in these calls).
        assert transcript.model_dump(mode="json", exclude={"redactions"}) == call["transcript"]
        assert transcript.redactions == []
    unknown = silent_wav(tmp_path / "long.wav", 2, 90)
    with pytest.raises(InferenceError, match="no recorded call"):
        await stand_in.transcribe(TranscriptionRequest(audio_path=str(unknown)))


@pytest.mark.asyncio
async def test_concurrent_requests_sleep_rather_than_compute(tmp_path: Path) -> None:
    """Eight requests of 0.5 s each finish together: the stand-in costs no CPU while it holds."""
    stand_in = SimulatedWhisper({"rtf": 0.5 / 10, "max_duration_gap_s": 20})
    call = stand_in.calls[0]
    audio = silent_wav(tmp_path / "a.wav", call["channels"], 10)
    started = time.monotonic()
    await asyncio.gather(*(stand_in.transcribe({"audio_path": str(audio)}) for _ in range(8)))
    assert 0.5 <= time.monotonic() - started < 1.5


@pytest.mark.asyncio
async def test_the_llm_stand_in_answers_what_was_recorded() -> None:
    stand_in = SimulatedLLM({"model_id": "Qwen/Qwen2.5-7B-Instruct", "service_s": 0.2})
    recorded = load_fixture("tests/fixtures/cluster/llm.json")["replies"][0]
    transport = httpx.ASGITransport(app=stand_in.build_asgi_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://llm") as client:
        models = (await client.get("/v1/models")).json()
        assert [m["id"] for m in models["data"]] == ["Qwen/Qwen2.5-7B-Instruct"]
        started = time.monotonic()
        messages = [{"role": "user", "content": "never recorded"}]
        miss = await client.post(
            "/v1/chat/completions", json={"model": "Qwen/Qwen2.5-7B-Instruct", "messages": messages}
        )
        assert time.monotonic() - started >= 0.2 and miss.headers["x-callcov-sim"] == "miss"
        wrong = await client.post("/v1/chat/completions", json={"model": "other", "messages": messages})
        assert wrong.status_code == 404
    assert messages_key(messages) not in stand_in.replies
    assert recorded["messages_sha256"] in stand_in.replies
    reply = miss.json()
    assert reply["model"] == "Qwen/Qwen2.5-7B-Instruct"
    assert reply["choices"] == recorded["reply"]["choices"]


def test_the_builders_place_replicas_like_the_gpu_config() -> None:
    config = yaml.safe_load((ROOT / "configs" / "serve.sim.yaml").read_text())
    apps = {app["name"]: app for app in config["applications"]}
    whisper = build_whisper_app(apps["whisper"]["args"])._bound_deployment
    assert whisper.ray_actor_options["resources"] == {"whisper": 0.5}
    assert whisper.ray_actor_options["num_gpus"] == 0.5
    llm = build_llm_app(apps["llm"]["args"])._bound_deployment
    assert llm.ray_actor_options["accelerator_type"] == "L40S" and llm.ray_actor_options["num_gpus"] == 1


def test_node_types_are_the_cluster_launchers() -> None:
    cluster = yaml.safe_load((ROOT / "ray-cluster.yaml").read_text())["available_node_types"]
    head, workers = script("sim_cluster").node_types({"gpu_whisper": 2, "gpu_llm": 2})
    assert head == cluster["head_cpu"]["resources"]
    assert workers["gpu_llm"]["resources"] == {"CPU": 4, "GPU": 1, "llm": 1, "accelerator_type:L40S": 1}
    assert workers["gpu_whisper"]["resources"] == cluster["gpu_whisper"]["resources"]
    assert workers["gpu_whisper"]["max_workers"] == 2


def test_phase_one_caps_each_model_at_one_node() -> None:
    sim = script("cluster_sim")
    base = yaml.safe_load((ROOT / "configs" / "serve.sim.yaml").read_text())
    one, caps_one = sim.phase_config(base, 1, 8123)
    two, caps_two = sim.phase_config(base, 2, 8123)
    assert caps_one == {"whisper": 2, "llm": 1} and caps_two == {"whisper": 4, "llm": 2}
    assert one["http_options"]["port"] == 8123
    overrides = {a["name"]: a.get("deployments") for a in one["applications"]}
    assert overrides["whisper"][0]["autoscaling_config"]["max_replicas"] == 2


def test_the_saturated_rate_counts_only_while_every_slot_had_work() -> None:
    report = script("sim_report")
    run = report.Run()
    phase = report.Phase("1", 0.0, calls=8, whisper_slots=2, caps={"whisper": 2})
    phase.ids = [f"a{i}" for i in range(8)]
    run.phases = [phase]
    run.samples = [report.Sample(t, 0, 0, 0, {"whisper": 2 if t >= 2 else 1}, {}) for t in range(30)]
    run.completions = {f"a{i}": 4.0 + 2 * i for i in range(8)}  # one every 2 s from 4 s on
    rate, window = report.saturated_rate(run, phase)
    assert window == (2, 14.0)  # replicas up at 2 s; the 6th of 8 completions (2 still to come)
    assert rate == pytest.approx(6 / 12)
    assert json.dumps(report.figures(run)["rates"])
