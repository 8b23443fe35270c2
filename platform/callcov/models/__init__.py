"""Every table, one module each. Importing this package registers them all on ``SQLModel.metadata``."""

from callcov.models.analysis import Analysis
from callcov.models.api_key import ApiKey
from callcov.models.billing_event import BillingEvent
from callcov.models.disabled_webhook_url import DisabledWebhookUrl
from callcov.models.email_message import EmailMessage
from callcov.models.email_token import EmailToken
from callcov.models.idempotency_key import IdempotencyKey
from callcov.models.invoice import Invoice
from callcov.models.job import Job
from callcov.models.plan_change import PlanChange
from callcov.models.refresh_token import RefreshToken
from callcov.models.rescore import AnalysisResult, Rescore, RescoreRun
from callcov.models.rubric import AccountRubric, RubricVersion
from callcov.models.subscription import Subscription
from callcov.models.usage_record import UsageRecord
from callcov.models.usage_report import UsageReport
from callcov.models.user import User
from callcov.models.webhook_attempt import WebhookAttempt
from callcov.models.webhook_event import WebhookEvent
from callcov.models.webhook_secret import WebhookSecret

__all__ = [
    "AccountRubric",
    "Analysis",
    "AnalysisResult",
    "ApiKey",
    "BillingEvent",
    "DisabledWebhookUrl",
    "EmailMessage",
    "EmailToken",
    "IdempotencyKey",
    "Invoice",
    "Job",
    "PlanChange",
    "RefreshToken",
    "Rescore",
    "RescoreRun",
    "RubricVersion",
    "Subscription",
    "UsageRecord",
    "UsageReport",
    "User",
    "WebhookAttempt",
    "WebhookEvent",
    "WebhookSecret",
]
