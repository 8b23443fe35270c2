"""``create_app``: the FastAPI application factory (also used by the Ray Serve ingress).

Middleware, outermost first (all pure ASGI):

1. ``RequestIdMiddleware``: gives the request its ``req_…`` id, sends ``X-Request-ID``, and is the
   last-resort 500 for the layers below. (With the development secrets, ``dev_guard`` then refuses
   connections that did not arrive on loopback.)
2. ``HeaderLimitMiddleware``: 431 for more than 100 header fields or 32 KiB of headers
   (``callcov.header_limit``; under Serve the proxy refuses them first).
3. ``TrailingSlashMiddleware``: ``/x/`` is routed as ``/x``, before anything reads the path.
4. ``BodyLimitMiddleware``: 413 for a body over its limit, from Content-Length before reading, or
   while a chunked body streams in (``callcov.body_limit``).
5. ``AuthenticationMiddleware``: reads the credential (and verifies a JWT) once and keeps the
   ``Caller`` on the request; its one database lookup runs when a layer below first needs it.
6. ``RateLimitMiddleware``: counts the request against the caller's valid key, user, or else its
   client address (and the caller's plan, when per-plan limits are set); a 429 stops here, before
   idempotency, and so does the 401 of a request carrying an invalid credential.
7. ``IdempotencyMiddleware``: replays or refuses POSTs with an ``Idempotency-Key``, scoped to the
   caller's account and mode.
8. ``InternalErrorMiddleware``: turns an unhandled error into the 500 body *inside* the layers above,
   so idempotency releases its key and the rate-limit headers are still sent.

Routes then get the principal from the ``Caller`` (``callcov.auth.deps``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.middleware import Middleware

from callcov import __version__
from callcov.analyses.openapi import register_webhook_docs
from callcov.api import API_PREFIX, build_api_router
from callcov.auth.middleware import AuthenticationMiddleware
from callcov.body_limit import BodyLimitMiddleware
from callcov.config import Settings, get_settings
from callcov.console.routes import router as console_router
from callcov.db import create_engine, create_sessionmaker
from callcov.dev_guard import loopback_guard
from callcov.emails.sender import build_sender
from callcov.errors import install_error_handlers
from callcov.header_limit import HeaderLimitMiddleware
from callcov.health import build_health_router
from callcov.idempotency.middleware import IdempotencyMiddleware
from callcov.kit import metrics
from callcov.kit.logs import configure_logging
from callcov.kit.prometheus_metrics import PrometheusMetrics
from callcov.metrics_endpoint import build_metrics_router, queue_sampler
from callcov.middleware import InternalErrorMiddleware, RequestIdMiddleware, TrailingSlashMiddleware
from callcov.openapi import install_openapi
from callcov.ratelimit.limiter import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from callcov.ratelimit.lockout import Lockout, LockoutPolicy, MemoryLockout, RedisLockout
from callcov.ratelimit.middleware import RateLimitMiddleware
from callcov.state import AppState
from callcov.storage.objects import build_storage
from callcov.worker.wake import build_waker

DESCRIPTION = (
    "CallCov scores call recordings for compliance and quality. Authenticate with an API key "
    "(`X-API-Key: sk_…` or `Authorization: Bearer sk_…`) or a user access token (JWT)."
)


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0] if route.tags else 'default'}-{route.name}"


def _build_state(settings: Settings) -> AppState:
    engine = create_engine(settings)
    redis = None
    limiter: RateLimiter = MemoryRateLimiter()
    limits = settings.ratelimit
    policy = LockoutPolicy(limits.login_free_attempts, limits.login_lockout_s, limits.login_lockout_max_s)
    login_lockout: Lockout = MemoryLockout(policy)
    if settings.redis.url:
        from redis.asyncio import Redis

        redis = Redis.from_url(settings.redis.url, socket_timeout=2, socket_connect_timeout=2)
        limiter = RedisRateLimiter(redis, settings.redis.key_prefix)
        login_lockout = RedisLockout(redis, settings.redis.key_prefix, policy)
    return AppState(
        settings=settings,
        engine=engine,
        sessionmaker=create_sessionmaker(engine),
        lookups=create_sessionmaker(engine, autocommit=True),
        redis=redis,
        limiter=limiter,
        login_lockout=login_lockout,
        email_sender=build_sender(settings.email),
        storage=build_storage(settings),
        waker=build_waker(redis, settings.redis),
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    # Without Ray (`/metrics`): this app's own registry, the process' sink while the app runs.
    sink = PrometheusMetrics() if settings.metrics.enabled else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = _build_state(settings)
        app.state.callcov = state
        try:
            async with AsyncExitStack() as stack:
                if sink is not None:
                    metrics.install(sink)
                    await stack.enter_async_context(queue_sampler(state.sessionmaker, settings.metrics, sink))
                yield
        finally:
            if sink is not None and metrics.current() is sink:
                metrics.install(metrics.NullMetrics())
            if state.redis is not None:
                await state.redis.aclose()
            await state.engine.dispose()

    app = FastAPI(
        title="CallCov API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=f"{API_PREFIX}/redoc",
        lifespan=lifespan,
        redirect_slashes=False,
        generate_unique_id_function=_operation_id,
        middleware=[
            Middleware(RequestIdMiddleware),
            *loopback_guard(settings),
            Middleware(HeaderLimitMiddleware),
            Middleware(TrailingSlashMiddleware),
            Middleware(BodyLimitMiddleware),
            Middleware(AuthenticationMiddleware),
            Middleware(RateLimitMiddleware),
            Middleware(IdempotencyMiddleware),
            Middleware(InternalErrorMiddleware),
        ],
    )
    install_error_handlers(app)
    app.include_router(build_api_router())
    register_webhook_docs(app)
    install_openapi(app)
    app.include_router(build_health_router(settings.inference))
    app.include_router(console_router)
    if sink is not None:
        app.include_router(build_metrics_router(settings.metrics, sink))
    return app
