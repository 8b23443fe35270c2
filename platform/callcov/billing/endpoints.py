"""/billing: plans, the subscription and its changes, usage, history, the customer portal, and the
inbound Stripe webhook."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request

from callcov.auth.deps import AnyPrincipal, JwtUser
from callcov.auth.principal import Principal
from callcov.billing import changes, service
from callcov.billing.errors import (
    BillingProviderUnavailable,
    InvalidStripeSignature,
    InvalidTier,
    PaymentFailed,
    PortalUnavailable,
    StripeEventTooLarge,
    StripeWebhookNotConfigured,
    SubscriptionConflict,
)
from callcov.billing.history import history_page
from callcov.billing.schemas import (
    HistoryItem,
    PortalSession,
    SubscriptionCancel,
    SubscriptionCreate,
    SubscriptionPublic,
    SubscriptionSummary,
    SubscriptionUpdate,
    TierList,
    Usage,
    WebhookReceipt,
)
from callcov.billing.stripe_webhook import receive as receive_stripe_event
from callcov.db import SessionDep
from callcov.errors import Forbidden, Unauthorized
from callcov.kit.pagination import Page, PageDep
from callcov.models import User
from callcov.state import StateDep

router = APIRouter(prefix="/billing", tags=["billing"])
MAX_EVENT_BYTES = 1024 * 1024
AUTH_ERRORS: dict[int | str, dict[str, object]] = {401: Unauthorized.schema(), 403: Forbidden.schema()}
CHANGE_ERRORS: dict[int | str, dict[str, object]] = {
    **AUTH_ERRORS,
    400: InvalidTier.schema(),
    402: PaymentFailed.schema(),
    409: SubscriptionConflict.schema(),
    503: BillingProviderUnavailable.schema(),
}


@router.get("/tiers")
async def list_tiers() -> TierList:
    """The plans (public)."""
    return TierList.all()


@router.get("/subscription", responses=AUTH_ERRORS)
async def get_subscription(
    principal: AnyPrincipal, session: SessionDep, state: StateDep
) -> SubscriptionPublic:
    view = await service.view(session, principal, state.settings.billing)
    return SubscriptionPublic.of(view, livemode=principal.livemode)


async def _public(session: SessionDep, user: User, state: StateDep) -> SubscriptionPublic:
    principal = Principal(user=user, via="jwt", livemode=True)
    view = await service.view(session, principal, state.settings.billing)
    return SubscriptionPublic.of(view, livemode=True)


@router.post("/subscription", status_code=201, responses=CHANGE_ERRORS)
async def create_subscription(
    data: SubscriptionCreate, user: JwtUser, session: SessionDep, state: StateDep
) -> SubscriptionPublic:
    """Subscribe to a plan (free needs no payment method)."""
    await changes.subscribe(session, state.settings.billing, user, data.tier, data.payment_method)
    return await _public(session, user, state)


@router.post("/subscription/update", responses=CHANGE_ERRORS)
async def update_subscription(
    data: SubscriptionUpdate, user: JwtUser, session: SessionDep, state: StateDep
) -> SubscriptionPublic:
    """Upgrade or downgrade, prorated (by Stripe, or by the local ledger)."""
    await changes.update(session, state.settings.billing, user, data.tier)
    return await _public(session, user, state)


@router.post("/subscription/cancel", responses=CHANGE_ERRORS)
async def cancel_subscription(
    user: JwtUser, session: SessionDep, state: StateDep, data: SubscriptionCancel | None = None
) -> SubscriptionPublic:
    """Cancel at the period's end (default), or now with ``{"at_period_end": false}``."""
    at_period_end = data.at_period_end if data is not None else True
    await changes.cancel(session, state.settings.billing, user, at_period_end=at_period_end)
    return await _public(session, user, state)


@router.post("/subscription/reactivate", responses=CHANGE_ERRORS)
async def reactivate_subscription(user: JwtUser, session: SessionDep, state: StateDep) -> SubscriptionPublic:
    """Undo a pending cancellation."""
    await changes.reactivate(session, state.settings.billing, user)
    return await _public(session, user, state)


@router.get("/subscription/summary", responses=AUTH_ERRORS)
async def subscription_summary(
    principal: AnyPrincipal, session: SessionDep, state: StateDep
) -> SubscriptionSummary:
    view = await service.view(session, principal, state.settings.billing)
    return SubscriptionSummary.of(view, livemode=principal.livemode)


@router.get("/usage", responses=AUTH_ERRORS)
async def get_usage(principal: AnyPrincipal, session: SessionDep, state: StateDep) -> Usage:
    """Usage of the current period: minutes, analyses, limits and costs so far."""
    view = await service.view(session, principal, state.settings.billing)
    return Usage.of(view, livemode=principal.livemode)


@router.get("/history", responses=AUTH_ERRORS)
async def get_history(principal: AnyPrincipal, session: SessionDep, page: PageDep) -> Page[HistoryItem]:
    """Usage records and invoices, newest first. Test mode has neither (it is never billed)."""
    if not principal.livemode:
        return Page[HistoryItem].build([], 0, page)
    items, total = await history_page(session, principal.account_id, page)
    return Page[HistoryItem].build(items, total, page)


@router.get(
    "/customer-portal",
    responses={**AUTH_ERRORS, 400: PortalUnavailable.schema(), 503: BillingProviderUnavailable.schema()},
)
async def customer_portal(user: JwtUser, session: SessionDep, state: StateDep) -> PortalSession:
    """A Stripe customer-portal session for the account (Stripe billing only)."""
    return PortalSession(url=await changes.portal_url(session, state.settings.billing, user))


async def _event_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_EVENT_BYTES:
            raise StripeEventTooLarge()
    return bytes(body)


@router.post(
    "/webhook",
    responses={
        400: InvalidStripeSignature.schema(),
        404: StripeWebhookNotConfigured.schema(),
        413: StripeEventTooLarge.schema(),
    },
)
async def stripe_webhook(
    request: Request,
    session: SessionDep,
    state: StateDep,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> WebhookReceipt:
    """Inbound Stripe events: verified with the Stripe signature, stored once by event id, processed
    by a job."""
    return await receive_stripe_event(
        session, state.settings.billing, await _event_body(request), stripe_signature, waker=state.waker
    )
