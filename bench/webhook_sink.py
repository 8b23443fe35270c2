"""The benchmark's webhook receiver: verifies each request's signature (standardwebhooks) and
counts requests and distinct webhook-ids. POST /stats reads the counts, POST /reset clears them."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

counts: Counter[str] = Counter()
verified = 0


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global verified
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    reply: dict[str, int] = {}
    if scope["path"] == "/stats":
        reply = {"received": sum(counts.values()), "unique": len(counts), "verified": verified}
    elif scope["path"] == "/reset":
        counts.clear()
        verified = 0
    else:
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        try:
            Webhook(os.environ["SINK_SECRET"]).verify(body, headers)
            verified += 1
        except WebhookVerificationError:
            pass
        counts[headers.get("webhook-id", "")] += 1
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": json.dumps(reply).encode()})
