"""The published development secrets serve loopback only.

``callcov-serve`` refuses to bind another address with them (``Settings.check_bind``), and staging
and production refuse them outright. A server started some other way (``uvicorn --host 0.0.0.0``, a
container publishing its port) is caught here: while a secret is a placeholder, a connection that
arrived on a non-loopback IP address (the ASGI ``server`` of the request) gets 503
``insecure_configuration`` instead of an API whose tokens anyone can forge. Values that are not IP
addresses (a Unix socket, an in-process test transport) are local and pass.
"""

from __future__ import annotations

import ipaddress
import logging

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from callcov.config import MIN_SECRET_LENGTH, Settings, is_loopback
from callcov.errors import error_response

logger = logging.getLogger("callcov.config")


def _reachable_from_outside(scope: Scope) -> bool:
    server = scope.get("server")
    host = server[0] if server else None
    if not isinstance(host, str):
        return False
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return not is_loopback(host)


class LoopbackOnlyMiddleware:
    def __init__(self, app: ASGIApp, weak: list[str]) -> None:
        self.app = app
        self.message = (
            "This server runs with the published development secrets and answers loopback connections "
            f"only: set {', '.join(weak)} (random, {MIN_SECRET_LENGTH}+ characters) to serve other addresses"
        )
        self.warned = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _reachable_from_outside(scope):
            if not self.warned:
                self.warned = True
                logger.error("refused a connection to %s: %s", scope["server"][0], self.message)
            response = error_response(scope, 503, self.message, code="insecure_configuration")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def loopback_guard(settings: Settings) -> list[Middleware]:
    """The guard, when a secret is a placeholder (none otherwise)."""
    weak = settings.placeholder_secrets()
    if not weak:
        return []
    logger.warning("development secrets in use (%s): serving loopback connections only", ", ".join(weak))
    return [Middleware(LoopbackOnlyMiddleware, weak=weak)]
