"""A real webhook receiver for the tests: an ASGI app served on loopback that records every request,
verifies it with the ``standardwebhooks`` package against the secrets it is given, and answers
from a script (status codes and delays), then 200."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float
    # Which of the receiver's secrets verified this request (by index).
    verified_by: list[int] = field(default_factory=list)

    @property
    def msg_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    delay_s: float = 0.0
    body: bytes = b"ok"
    headers: tuple[tuple[bytes, bytes], ...] = ()


class Receiver:
    def __init__(self, secrets: list[str] | None = None) -> None:
        self.secrets = list(secrets or [])
        self.script: list[Reply] = []
        self.received: list[Received] = []
        self._lock = threading.Lock()

    def answer(self, *replies: Reply | int) -> None:
        self.script = [reply if isinstance(reply, Reply) else Reply(reply) for reply in replies]

    def verify(self, headers: dict[str, str], body: bytes) -> list[int]:
        verified = []
        for index, secret in enumerate(self.secrets):
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            verified.append(index)
        return verified

    @property
    def msg_ids(self) -> list[str]:
        with self._lock:
            return [item.msg_id for item in self.received]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        headers = {key.decode().lower(): value.decode() for key, value in scope["headers"]}
        with self._lock:
            self.received.append(Received(headers, body, time.monotonic(), self.verify(headers, body)))
            reply = self.script.pop(0) if self.script else Reply()
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [(b"content-type", b"text/plain"), *reply.headers],
            }
        )
        await send({"type": "http.response.body", "body": reply.body})
