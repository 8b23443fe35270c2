"""Stripe, through the official SDK's async client. Customers, subscriptions (Stripe prorates plan
changes by default), overage as invoice items, and customer-portal sessions. Stripe errors become
AppErrors: a declined card 402, a refused request 400, an unreachable Stripe 503."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import stripe

from callcov.billing.errors import (
    BillingProviderUnavailable,
    InvalidTier,
    PaymentFailed,
    PaymentMethodRequired,
)
from callcov.billing.plans import plan_of
from callcov.billing.provider import Remote, Snapshot
from callcov.config import BillingSettings
from callcov.errors import BadRequest

logger = logging.getLogger("callcov.billing.stripe")
T = TypeVar("T")
ENDED = frozenset({"canceled", "incomplete_expired"})


def _time(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value), UTC)


def subscription_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """Plan id, status and period of a Stripe subscription (the period is on the subscription in
    older API versions, on its item in newer ones)."""
    items = (obj.get("items") or {}).get("data") or [{}]
    item = items[0]
    plan = item.get("plan") or item.get("price") or {}
    start = obj.get("current_period_start") or item.get("current_period_start")
    end = obj.get("current_period_end") or item.get("current_period_end")
    return {
        "plan_id": plan.get("id"),
        "status": obj.get("status"),
        "period_start": _time(start) if start else None,
        "period_end": _time(end) if end else None,
        "cancel_at_period_end": bool(obj.get("cancel_at_period_end")),
        "item_id": item.get("id"),
    }


class StripeProvider:
    name: Literal["local", "stripe"] = "stripe"

    def __init__(self, settings: BillingSettings) -> None:
        self.settings = settings
        self.http = stripe.HTTPXClient(timeout=settings.stripe_timeout_s)
        base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
        self.client = stripe.StripeClient(
            settings.stripe_secret_key,
            base_addresses=base,  # type: ignore[arg-type]
            http_client=self.http,
            max_network_retries=settings.stripe_max_network_retries,
        )
        self.tiers_by_plan = {plan_id: tier for tier, plan_id in settings.stripe_plan_ids.items()}

    async def aclose(self) -> None:
        await self.http.close_async()

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except stripe.CardError as exc:
            raise PaymentFailed(exc.user_message or "The payment method was declined") from exc
        except stripe.InvalidRequestError as exc:
            raise BadRequest(f"Stripe refused the request: {exc.user_message or exc}") from exc
        except stripe.StripeError as exc:
            logger.warning("Stripe call failed: %s", exc)
            raise BillingProviderUnavailable() from exc

    def plan_id(self, tier: str) -> str:
        if tier not in self.settings.stripe_plan_ids:
            raise InvalidTier(f"No Stripe plan is configured for the tier '{tier}'")
        return self.settings.stripe_plan_ids[tier]

    def remote(self, obj: dict[str, Any], customer_id: str | None, fallback_tier: str) -> Remote:
        fields = subscription_fields(obj)
        ended = fields["status"] in ENDED
        return Remote(
            tier="free" if ended else self.tiers_by_plan.get(fields["plan_id"], fallback_tier),
            status="active" if ended else fields["status"],
            period_start=fields["period_start"],
            period_end=fields["period_end"],
            cancel_at_period_end=fields["cancel_at_period_end"],
            canceled=ended,
            customer_id=customer_id,
            subscription_id=None if ended else obj["id"],
        )

    async def ensure_plans(self) -> None:
        """Create the products and plans when missing (``stripe_create_plans``: development, tests)."""
        for tier, plan_id in self.settings.stripe_plan_ids.items():
            try:
                await self.client.v1.plans.retrieve_async(plan_id)
                continue
            except stripe.InvalidRequestError:  # no such plan: create it
                pass
            except stripe.StripeError as exc:
                raise BillingProviderUnavailable() from exc
            plan = plan_of(tier)
            product = await self._call(
                self.client.v1.products.create_async(params={"name": f"CallCov {plan.name}"})
            )
            await self._call(
                self.client.v1.plans.create_async(
                    params={
                        "id": plan_id,
                        "product": product.id,
                        "amount": plan.price_cents,
                        "currency": "usd",
                        "interval": "month",
                    }
                )
            )

    async def ensure_customer(self, snap: Snapshot) -> str:
        if snap.customer_id:
            return snap.customer_id
        customer = await self._call(
            self.client.v1.customers.create_async(
                params={"email": snap.email, "metadata": {"account_id": str(snap.user_id)}},
                options={"idempotency_key": f"callcov-customer-{snap.user_id}"},
            )
        )
        return customer.id

    async def _has_payment_method(self, customer_id: str) -> bool:
        customer = (await self._call(self.client.v1.customers.retrieve_async(customer_id))).to_dict()
        settings = customer.get("invoice_settings") or {}
        return bool(settings.get("default_payment_method") or customer.get("default_source"))

    async def _attach(self, customer_id: str, payment_method: str) -> None:
        await self._call(
            self.client.v1.payment_methods.attach_async(payment_method, params={"customer": customer_id})
        )
        await self._call(
            self.client.v1.customers.update_async(
                customer_id, params={"invoice_settings": {"default_payment_method": payment_method}}
            )
        )

    async def subscribe(self, snap: Snapshot, tier: str, payment_method: str | None) -> Remote:
        if self.settings.stripe_create_plans:
            await self.ensure_plans()
        customer_id = await self.ensure_customer(snap)
        if payment_method:
            await self._attach(customer_id, payment_method)
        elif not await self._has_payment_method(customer_id):
            raise PaymentMethodRequired()
        created = await self._call(
            self.client.v1.subscriptions.create_async(
                params={
                    "customer": customer_id,
                    "items": [{"plan": self.plan_id(tier)}],
                    "payment_behavior": "error_if_incomplete",
                    "metadata": {"account_id": str(snap.user_id), "tier": tier},
                },
                options={
                    "idempotency_key": f"callcov-subscribe-{snap.id}-{snap.version}-{tier}-{payment_method}"
                },
            )
        )
        return self.remote(created.to_dict(), customer_id, tier)

    async def _current(self, snap: Snapshot) -> dict[str, Any]:
        if not snap.subscription_id:
            raise BadRequest("There is no Stripe subscription to change")
        found = await self._call(self.client.v1.subscriptions.retrieve_async(snap.subscription_id))
        return found.to_dict()

    async def change_tier(self, snap: Snapshot, tier: str) -> Remote:
        current = await self._current(snap)
        item_id = subscription_fields(current)["item_id"]
        updated = await self._call(
            self.client.v1.subscriptions.update_async(
                current["id"],
                # Stripe prorates by default (proration_behavior "create_prorations").
                params={
                    "items": [{"id": item_id, "plan": self.plan_id(tier)}],
                    "cancel_at_period_end": False,
                    "metadata": {"account_id": str(snap.user_id), "tier": tier},
                },
                options={"idempotency_key": f"callcov-change-{snap.id}-{snap.version}-{tier}"},
            )
        )
        return self.remote(updated.to_dict(), snap.customer_id, tier)

    async def cancel(self, snap: Snapshot, *, at_period_end: bool) -> Remote:
        current = await self._current(snap)
        if at_period_end:
            result = await self._call(
                self.client.v1.subscriptions.update_async(
                    current["id"], params={"cancel_at_period_end": True}
                )
            )
            return self.remote(result.to_dict(), snap.customer_id, snap.tier)
        if current.get("status") in ENDED:  # a retry after a crash: cancelled already
            return self.remote(current, snap.customer_id, snap.tier)
        # invoice_now: Stripe's final invoice collects the pending items (the overage reported just
        # before); prorate false: cancelling now refunds nothing of the plan's price (docs/api.md).
        result = await self._call(
            self.client.v1.subscriptions.cancel_async(
                current["id"], params={"invoice_now": True, "prorate": False}
            )
        )
        return self.remote(result.to_dict(), snap.customer_id, snap.tier)

    async def reactivate(self, snap: Snapshot) -> Remote:
        current = await self._current(snap)
        result = await self._call(
            self.client.v1.subscriptions.update_async(current["id"], params={"cancel_at_period_end": False})
        )
        return self.remote(result.to_dict(), snap.customer_id, snap.tier)

    async def portal_url(self, customer_id: str) -> str:
        session = await self._call(
            self.client.v1.billing_portal.sessions.create_async(
                params={"customer": customer_id, "return_url": self.settings.portal_return_url}
            )
        )
        return str(session.url)

    async def report_usage(
        self, snap: Snapshot, *, amount: int, description: str, idempotency_key: str
    ) -> str:
        """Overage (or a credit, negative) as an invoice item of the customer: it lands on the
        customer's next invoice, the subscription's renewal or the final one (``invoice_pending``)."""
        params: dict[str, Any] = {
            "customer": snap.customer_id,
            "amount": amount,
            "currency": "usd",
            "description": description,
            "metadata": {"account_id": str(snap.user_id)},
        }
        item = await self.client.v1.invoice_items.create_async(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": idempotency_key},
        )
        return str(item.id)

    async def invoice_pending(self, snap: Snapshot) -> str | None:
        """The final invoice of a customer whose subscription ended: its pending invoice items (the
        last overage, credits), charged now. Nothing pending: nothing to do. A declined card leaves
        the invoice open for the customer (portal, hosted page); it is not retried here."""
        customer = snap.customer_id or ""
        items = await self._call(self.client.v1.invoice_items.list_async(params={"customer": customer}))
        if not any(item.get("invoice") is None for item in items.to_dict().get("data") or []):
            return None
        try:
            invoice = await self.client.v1.invoices.create_async(
                params={  # type: ignore[typeddict-item]
                    "customer": customer,
                    "pending_invoice_items_behavior": "include",
                    "description": "CallCov: final usage",
                    "metadata": {"account_id": str(snap.user_id)},
                }
            )
        except stripe.InvalidRequestError as exc:  # nothing left to invoice (or, on localstripe, no
            logger.warning("no final invoice for %s: %s", customer, exc)  # invoice without a plan)
            return None
        except stripe.StripeError as exc:
            raise BillingProviderUnavailable() from exc
        try:
            await self.client.v1.invoices.pay_async(str(invoice.id))
        except stripe.CardError as exc:
            logger.warning("final invoice %s of %s not paid: %s", invoice.id, customer, exc)
        except stripe.StripeError as exc:
            raise BillingProviderUnavailable() from exc
        return str(invoice.id)
