"""The edge gate: rate limits with ``X-RateLimit-*`` headers on every response and ``Retry-After`` on
429, and the 401 of any request that carries an invalid credential, public routes included.

Who a request is counted against:

- a verified JWT: its user (known without a lookup, so a rate-limited JWT costs no query);
- an API key: the key, once the caller's one lookup found it valid; a made-up key never gets a
  bucket of its own (a malformed one is refused without a query: ``resolve_api_key``);
- anything else (no credential, or an invalid one): the client address (``ratelimit.client``).

A request with an invalid credential is counted against its address, then refused with 401.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callcov.auth.middleware import Caller, caller_of
from callcov.config import RateLimitSettings
from callcov.errors import error_response
from callcov.ratelimit.client import Network, client_address
from callcov.ratelimit.limiter import Decision
from callcov.ratelimit.plans import PlanLookup, plan_limit
from callcov.state import AppState, state_of_app

SUBMISSION_PATHS = frozenset({"/api/v1/analysis", "/api/v1/calls/analyze"})
AUTH_PREFIX = "/api/v1/auth/"
# Stripe's webhook deliveries come in bursts from Stripe's addresses and are checked by signature:
# a 429 would only delay them (Stripe retries), so they are not counted. /metrics has its own token.
EXEMPT_PATHS = frozenset({"/health", "/healthz", "/metrics", "/api/v1/billing/webhook"})


async def identity_of(scope: Scope, caller: Caller, proxies: Sequence[Network]) -> str:
    """The bucket owner: a verified JWT's user, a valid API key, else the client address."""
    if caller.user_id is not None:
        return f"user:{caller.user_id}"
    if caller.credential is not None:
        principal = (await caller.resolution()).principal
        if principal is not None and principal.api_key_id is not None:
            return f"key:{principal.api_key_id}"
    return "ip:" + client_address(scope, proxies)


def bucket_of(scope: Scope, settings: RateLimitSettings) -> tuple[str, int]:
    """Submissions and the public POST /auth/* count in their own smaller buckets."""
    if scope["method"] == "POST" and scope["path"] in SUBMISSION_PATHS:
        return "submissions", settings.submissions_per_window
    if scope["method"] == "POST" and scope["path"].startswith(AUTH_PREFIX):
        return "auth", min(settings.auth_per_window, settings.default_per_window)
    return "default", settings.default_per_window


def with_headers(send: Send, headers: dict[str, str]) -> Send:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = list(message.get("headers", [])) + raw
        await send(message)

    return send_with_headers


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.plans = PlanLookup()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        state = state_of_app(scope["app"])
        caller = caller_of(scope)
        headers: dict[str, str] = {}
        if state.settings.ratelimit.enabled:
            decision = await self._count(scope, caller, state)
            headers = decision.headers()
            if not decision.allowed:
                await self._too_many(scope, receive, send, decision, state.settings.ratelimit)
                return
        refusal = await caller.refusal()
        if refusal is not None:
            response = error_response(
                scope,
                refusal.status_code,
                refusal.message,
                code=refusal.code,
                headers={"WWW-Authenticate": "Bearer", **refusal.headers, **headers},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, with_headers(send, headers))

    async def _count(self, scope: Scope, caller: Caller, state: AppState) -> Decision:
        settings = state.settings.ratelimit
        bucket, limit = bucket_of(scope, settings)
        identity = await identity_of(scope, caller, settings.trusted_proxies)
        if settings.plans:
            tier = await self.plans.tier(caller, identity)
            limit = plan_limit(settings.plans, tier, bucket, limit)
        return await state.limiter.hit(f"{bucket}:{identity}", limit, settings.window_s)

    async def _too_many(
        self, scope: Scope, receive: Receive, send: Send, decision: Decision, settings: RateLimitSettings
    ) -> None:
        message = f"Rate limit exceeded: {decision.limit} requests per {settings.window_s} s. Retry after the reset."
        response = error_response(
            scope,
            429,
            message,
            code="rate_limit_exceeded",
            headers=decision.headers(),
            details={"limit": decision.limit, "window_s": settings.window_s, "reset": decision.reset},
        )
        await response(scope, receive, send)
