"""Per-credential rate limits with ``X-RateLimit-*`` headers on every response and ``Retry-After`` on 429."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callcov.auth.middleware import Caller, caller_of
from callcov.errors import error_response
from callcov.kit.tokens import sha256_hex
from callcov.ratelimit.plans import PlanLookup, plan_limit
from callcov.state import state_of_app

SUBMISSION_PATHS = frozenset({"/api/v1/analysis", "/api/v1/calls/analyze"})
# Stripe's webhook deliveries come in bursts from Stripe's addresses and are checked by signature:
# a 429 would only delay them (Stripe retries), so they are not counted.
EXEMPT_PATHS = frozenset({"/health", "/healthz", "/metrics", "/api/v1/billing/webhook"})


def identity_of(scope: Scope, caller: Caller) -> str:
    """The credential a request is counted against: its API key (any ``sk_…`` value, valid or not),
    its verified JWT's user, else the client address. No database lookup."""
    credential = caller.credential
    if credential is not None and credential.kind == "api_key":
        return "key:" + sha256_hex(credential.value)[:32]
    if caller.user_id is not None:
        return f"user:{caller.user_id}"
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


def is_submission(scope: Scope) -> bool:
    return scope["method"] == "POST" and scope["path"] in SUBMISSION_PATHS


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.plans = PlanLookup()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        state = state_of_app(scope["app"])
        settings = state.settings.ratelimit
        if not settings.enabled:
            await self.app(scope, receive, send)
            return
        bucket, limit = (
            ("submissions", settings.submissions_per_window)
            if is_submission(scope)
            else ("default", settings.default_per_window)
        )
        caller = caller_of(scope)
        identity = identity_of(scope, caller)
        if settings.plans:
            tier = await self.plans.tier(caller, identity)
            limit = plan_limit(settings.plans, tier, bucket, limit)
        key = f"{bucket}:{identity}"
        decision = await state.limiter.hit(key, limit, settings.window_s)
        headers = decision.headers()
        if not decision.allowed:
            message = (
                f"Rate limit exceeded: {limit} requests per {settings.window_s} s. Retry after the reset."
            )
            response = error_response(
                scope,
                429,
                message,
                code="rate_limit_exceeded",
                headers=headers,
                details={"limit": limit, "window_s": settings.window_s, "reset": decision.reset},
            )
            await response(scope, receive, send)
            return
        raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + raw
            await send(message)

        await self.app(scope, receive, send_with_headers)
