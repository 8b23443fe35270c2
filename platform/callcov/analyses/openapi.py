"""The analysis webhook (sent through the outbox, ``callcov.webhooks``), described in the OpenAPI
document (``webhooks`` of OpenAPI 3.1)."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Header
from pydantic import Field

from callcov.analyses.schemas import AnalysisPublic


class AnalysisEvent(AnalysisPublic):
    """The analysis as GET /analysis/{id} returns it at completion or failure."""

    error_message: str | None = Field(
        default=None, description="Only on failure: the reason, also in `metadata.error_message`."
    )


def register_webhook_docs(app: FastAPI) -> None:
    @app.webhooks.post("analysis")
    def analysis_finished(
        body: AnalysisEvent,
        webhook_id: Annotated[
            str, Header(alias="webhook-id", description="`msg_…`, the same on every retry")
        ],
        webhook_timestamp: Annotated[str, Header(alias="webhook-timestamp", description="Unix seconds")],
        webhook_signature: Annotated[
            str,
            Header(
                alias="webhook-signature",
                description="`v1,<base64 HMAC-SHA256 of id.timestamp.body>` with the `whsec_` secret; "
                "two space-separated signatures for 24 h after a rotation",
            ),
        ],
    ) -> None:
        """Sent to the analysis' `webhook_url` when it completes or fails, signed per the Standard
        Webhooks specification. Answer 2xx within 30 s. Timeouts, connection errors, 408, 429 and 5xx
        are retried over about a day (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); any other status
        ends the delivery, and 410 Gone also stops deliveries to that URL for the account. Delivery is
        at least once: deduplicate on `webhook-id`."""
