"""Steps of scripts/gpu-smoke.sh that are easier in Python (run with the GPU venv's interpreter).

fetch SOURCE DEST            weights from a local folder, s3://bucket/prefix (an S3-compatible store:
                             AWS_ENDPOINT_URL and the usual AWS_* credentials) or hf:<repo id> (a model
                             hub, the only step with HF_HUB_OFFLINE=0); DEST is left complete or absent
config BASE OUT --whisper DIR --llm DIR --model-id ID
                             BASE (configs/serve.gpu.yaml) with the one-GPU overrides, written to OUT
rtf MODEL_DIR WAV...         faster-whisper on CUDA (float16): the transcription real-time factor
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import wave
from pathlib import Path
from typing import Any

import yaml


def say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def fetch(source: str, dest: Path) -> None:
    if dest.is_dir() and any(dest.iterdir()):
        say(f"{dest} already there")
        return
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    started = time.monotonic()
    if source.startswith("s3://"):
        import boto3

        bucket, _, prefix = source[len("s3://") :].partition("/")
        s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix.rstrip("/") + "/"
        ):
            for item in page.get("Contents", []):
                target = partial / item["Key"][len(prefix.rstrip("/")) + 1 :]
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, item["Key"], str(target))
    elif source.startswith("hf:"):
        os.environ["HF_HUB_OFFLINE"] = "0"  # this process only: the service itself stays offline
        from huggingface_hub import snapshot_download

        snapshot_download(repo_id=source[3:], local_dir=partial)
        shutil.rmtree(partial / ".cache", ignore_errors=True)
    elif Path(source).is_dir():
        shutil.copytree(source, partial, symlinks=False)
    else:
        raise SystemExit(f"weights source {source!r}: not a folder, s3://bucket/prefix or hf:<repo id>")
    if not partial.is_dir() or not any(partial.iterdir()):
        raise SystemExit(f"nothing fetched from {source}")
    partial.rename(dest)
    size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    say(f"fetched {source} -> {dest}: {size / 1e9:.2f} GB in {time.monotonic() - started:.1f} s")


def app(config: dict[str, Any], name: str) -> dict[str, Any]:
    for application in config["applications"]:
        if application["name"] == name:
            return application
    raise SystemExit(f"no application {name!r} in the config")


def one_gpu_config(base: Path, whisper: Path, llm: Path, model_id: str, port: int) -> dict[str, Any]:
    """serve.gpu.yaml on one GPU: the small models, loopback only, one replica of everything.

    Whisper shares the GPU outside Ray's accounting (num_gpus 0: Ray leaves CUDA_VISIBLE_DEVICES alone)
    because vLLM's placement group takes the whole GPU; vLLM is told to leave memory for it. The model
    name is set wherever the config names it (the llm app, and the api and dispatcher's llm_model)."""
    config = yaml.safe_load(base.read_text())
    config["http_options"] = {**config.get("http_options", {}), "host": "127.0.0.1", "port": port}
    for name in ("api", "dispatcher"):
        args = app(config, name).setdefault("args", {})
        args.pop("autoscaling_config", None)
        args["num_replicas"] = 1  # one API replica: no Redis needed for shared rate limits
        if "llm_model" in args:
            args["llm_model"] = model_id
    llm_args = app(config, "llm")["args"]
    llm_args.update(model_id=model_id, model_source=str(llm), max_model_len=4096, gpu_memory_utilization=0.6)
    llm_args.update(min_replicas=1, max_replicas=1)
    llm_args.pop("accelerator_type", None)
    llm_args["engine_kwargs"] = {**llm_args.get("engine_kwargs", {}), "enforce_eager": True}
    whisper_args = app(config, "whisper")["args"]
    whisper_args.update(model=str(whisper), device="cuda", compute_type="float16", num_gpus=0)
    whisper_args.pop("resources", None)
    if "autoscaling_config" in whisper_args:
        whisper_args["autoscaling_config"].update(min_replicas=1, initial_replicas=1, max_replicas=1)
    return config


def audio_seconds(path: Path) -> float:
    with wave.open(str(path)) as wav:
        return wav.getnframes() / wav.getframerate()


def rtf(model: str, wavs: list[Path], device: str = "cuda", compute_type: str = "float16") -> dict[str, Any]:
    """The whisper deployment's own transcriber (channels, VAD, batching as in serve.gpu.yaml) on CUDA."""
    from deployments.whisper import WhisperTranscriber

    started = time.monotonic()
    transcriber = WhisperTranscriber(
        {
            "model": model,
            "device": device,
            "compute_type": compute_type,
            "batch_size": 8 if device == "cuda" else 0,
        }
    )
    transcriber.transcribe_sync({"audio_path": str(wavs[0])})  # loads the model, warms up
    load_s = time.monotonic() - started
    audio_s = busy_s = 0.0
    text = ""
    for wav in wavs:
        started = time.monotonic()
        transcript = transcriber.transcribe_sync({"audio_path": str(wav)})
        busy_s += time.monotonic() - started
        audio_s += audio_seconds(wav)
        text = " ".join(segment.text for segment in transcript.segments)
    return {
        "model": model,
        "device": device,
        "load_and_warm_up_s": round(load_s, 1),
        "audio_s": round(audio_s, 1),
        "transcribe_s": round(busy_s, 2),
        "rtf": round(busy_s / audio_s, 4),
        "last_text": text[:120],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("fetch")
    p.add_argument("source")
    p.add_argument("dest", type=Path)
    p = commands.add_parser("config")
    p.add_argument("base", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--whisper", type=Path, required=True)
    p.add_argument("--llm", type=Path, required=True)
    p.add_argument("--model-id", required=True)
    p.add_argument("--port", type=int, default=8000)
    p = commands.add_parser("rtf")
    p.add_argument("model", help="a CTranslate2 Whisper folder (or a packaged name, e.g. base)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--compute-type", default="float16")
    p.add_argument("wavs", type=Path, nargs="+")
    args = parser.parse_args(argv)

    if args.command == "fetch":
        fetch(args.source, args.dest)
    elif args.command == "config":
        config = one_gpu_config(args.base, args.whisper, args.llm, args.model_id, args.port)
        args.out.write_text(yaml.safe_dump(config, sort_keys=False))
    else:
        say(json.dumps({"transcription": rtf(args.model, args.wavs, args.device, args.compute_type)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
