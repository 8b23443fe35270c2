"""Every domain router, mounted under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from callcov.analyses.endpoints import calls_router
from callcov.analyses.endpoints import router as analyses_router
from callcov.api_keys.endpoints import router as api_keys_router
from callcov.auth.endpoints import router as auth_router
from callcov.billing.endpoints import router as billing_router
from callcov.users.endpoints import router as users_router

API_PREFIX = "/api/v1"


def build_api_router() -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)
    for domain in (auth_router, users_router, api_keys_router, analyses_router, calls_router, billing_router):
        router.include_router(domain)
    return router
