"""Record what the simulated models (``deployments/simulated.py``) answer: run the real models once on
the cluster simulation's synthetic calls and write ``tests/fixtures/cluster/{transcripts,llm}.json``.

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/record_sim_fixtures.py

Whisper base (faster-whisper, CPU, int8) transcribes each call; the platform's scorer then scores the
transcript with the packaged llama.cpp model behind its OpenAI-compatible app on loopback, and every
chat completion it returns is recorded with the SHA-256 of the messages it answered. The cluster
simulation submits the same calls (``CALLS``), so the stand-ins find these records. Takes a few
minutes on 2 cores (the LLM dominates).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from speech import synthesize_call  # noqa: E402

from callcov.inference.openai_client import OpenAICompatibleClient  # noqa: E402
from callcov.inference.ports import TranscriptionRequest  # noqa: E402
from callcov.scoring.scorer import score  # noqa: E402
from deployments.simulated import FIXTURES, messages_key  # noqa: E402

GREETING = (
    "Hello, thank you for calling Acme Bank. My name is John. This call may be recorded for quality purposes."
)
# name -> (turns, stereo). Durations differ by several seconds, so the whisper stand-in tells them apart.
CALLS: dict[str, tuple[list[tuple[str, str]], bool]] = {
    "balance": (
        [
            ("agent", GREETING),
            ("customer", "Hi John. I would like to check the balance of my savings account."),
            ("agent", "Of course. I am calling up your account now. Your balance is two hundred dollars."),
            ("customer", "Great, thank you so much for your help."),
            ("agent", "You are welcome. Have a nice day. Goodbye."),
        ],
        True,
    ),
    "short": (
        [
            ("agent", GREETING),
            ("customer", "Hi John. I would like to check the balance of my savings account."),
        ],
        True,
    ),
    "charged_twice": (
        [
            ("agent", "Hello, thank you for calling Acme Bank, my name is John."),
            ("customer", "Hi John, I am calling because my credit card was charged twice."),
            ("agent", "I am sorry to hear that. Can you please confirm your date of birth?"),
            ("customer", "Sure, it is the fourth of July, nineteen eighty five."),
        ],
        False,
    ),
}
CALL_DIRECTION = "inbound"


def render(name: str, folder: Path) -> Any:
    turns, stereo = CALLS[name]
    return synthesize_call(turns, folder / f"{name}.wav", stereo=stereo)


@contextmanager
def served(app: Any) -> Iterator[str]:
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def recording_llm() -> tuple[Any, list[dict[str, Any]]]:
    """The packaged CPU LLM whose every chat completion is kept with the key of its messages."""
    from deployments.llm_cpu import LlamaCppServer

    server = LlamaCppServer({"n_threads": 2, "n_ctx": 8192})
    records: list[dict[str, Any]] = []
    answer = server.chat_completions

    async def chat_completions(body: Any) -> Any:
        response = await answer(body)
        if response.status_code == 200:
            reply = json.loads(response.body)
            records.append({"messages_sha256": messages_key(body["messages"]), "reply": reply})
        return response

    server.chat_completions = chat_completions  # type: ignore[method-assign]
    return server, records


async def record(folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from deployments.whisper import WhisperTranscriber

    transcriber = WhisperTranscriber(
        {"model": "base", "device": "cpu", "compute_type": "int8", "cpu_threads": 2}
    )
    server, replies = recording_llm()
    calls = []
    with served(server.build_asgi_app()) as url:
        async with OpenAICompatibleClient(url, server.args.model_name, timeout_s=1800) as llm:
            for name in CALLS:
                call = render(name, folder)
                transcript = await transcriber.transcribe(TranscriptionRequest(audio_path=str(call.path)))
                scored = await score(transcript, llm=llm, call_direction=CALL_DIRECTION)
                sys.stdout.write(f"{name}: {call.duration_s:.1f} s, llm {scored.llm_status}\n")
                calls.append(
                    {
                        "name": name,
                        "channels": 2 if call.stereo else 1,
                        "duration_s": round(call.duration_s, 3),
                        "audio_sha256": hashlib.sha256(call.path.read_bytes()).hexdigest(),
                        "llm_status": scored.llm_status,
                        "transcript": transcript.model_dump(mode="json"),
                    }
                )
    server.close()
    return calls, replies


def main() -> None:
    import tempfile

    out = ROOT / FIXTURES
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        calls, replies = asyncio.run(record(Path(folder)))
    source = {"whisper": "faster-whisper base, cpu int8", "llm": "qwen2.5-coder-0.5b, llama.cpp (CPU)"}
    (out / "transcripts.json").write_text(
        json.dumps({"recorded_with": source["whisper"], "calls": calls}, indent=1)
    )
    (out / "llm.json").write_text(json.dumps({"recorded_with": source["llm"], "replies": replies}, indent=1))
    sys.stdout.write(f"wrote {len(calls)} transcripts and {len(replies)} completions to {out}\n")


if __name__ == "__main__":
    main()
