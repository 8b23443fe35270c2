"""Billing errors (picklable AppErrors with stable codes)."""

from __future__ import annotations

from callcov.errors import AppError, NotFound


class UsageLimitExceeded(AppError):
    """402: the plan allows no more minutes this period, or its payment failed (past due)."""

    status_code = 402
    code = "usage_limit_exceeded"
    default_message = "This submission would exceed the minutes included in your plan"


class PaymentFailed(AppError):
    """402: Stripe refused the payment method (card declined)."""

    status_code = 402
    code = "payment_failed"
    default_message = "The payment method was declined"


class SubscriptionConflict(AppError):
    status_code = 409
    code = "conflict"
    default_message = "The subscription is not in a state that allows this change"


class InvalidTier(AppError):
    status_code = 400
    code = "invalid_tier"
    default_message = "Unknown or unsuitable tier"


class PaymentMethodRequired(AppError):
    status_code = 400
    code = "payment_method_required"
    default_message = (
        "A paid plan needs a payment method: pass payment_method (pm_…) or add one in the customer portal"
    )


class PortalUnavailable(AppError):
    status_code = 400
    code = "billing_portal_unavailable"
    default_message = "The customer portal needs Stripe billing; this deployment uses the local ledger"


class BillingProviderUnavailable(AppError):
    status_code = 503
    code = "service_unavailable"
    default_message = "The billing provider is unavailable; try again shortly"


class InvalidStripeSignature(AppError):
    status_code = 400
    code = "invalid_signature"
    default_message = "The Stripe signature is missing or invalid"


class StripeEventTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"
    default_message = "The event is larger than any Stripe event"


class StripeWebhookNotConfigured(NotFound):
    default_message = "Stripe webhooks are not configured"
