"""Every domain router, mounted under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from callcov.analyses.audio_endpoints import router as analysis_audio_router
from callcov.analyses.endpoints import calls_router
from callcov.analyses.endpoints import router as analyses_router
from callcov.analyses.webhook_endpoints import router as analysis_webhook_router
from callcov.analytics.endpoints import router as analytics_router
from callcov.api_keys.endpoints import router as api_keys_router
from callcov.auth.endpoints import router as auth_router
from callcov.billing.endpoints import router as billing_router
from callcov.rescores.endpoints import router as rescores_router
from callcov.rubrics.endpoints import router as rubrics_router
from callcov.users.endpoints import router as users_router
from callcov.webhooks.endpoints import secret_router as webhook_secret_router

API_PREFIX = "/api/v1"


def build_api_router() -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)
    domains = (
        auth_router,
        users_router,
        api_keys_router,
        analyses_router,
        calls_router,
        analysis_webhook_router,
        analysis_audio_router,
        webhook_secret_router,
        billing_router,
        rubrics_router,
        rescores_router,
        analytics_router,
    )
    for domain in domains:
        router.include_router(domain)
    return router
