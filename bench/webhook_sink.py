"""The benchmark's webhook receiver: the tests' verifying Receiver (tests/webhook_receiver.py) behind two
routes of its own. POST /stats reads the counts (requests, distinct webhook-ids, verified), POST /reset
clears them; every other request is a delivery."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from webhook_receiver import Receiver  # noqa: E402

hook = Receiver([os.environ["SINK_SECRET"]])


async def _reply(send: Any, body: dict[str, int]) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/stats":
        received = list(hook.received)
        await _reply(
            send,
            {
                "received": len(received),
                "unique": len({item.msg_id for item in received}),
                "verified": sum(1 for item in received if item.verified_by),
            },
        )
    elif scope["path"] == "/reset":
        hook.received.clear()
        await _reply(send, {})
    else:
        await hook(scope, receive, send)
