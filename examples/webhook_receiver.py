"""A CallCov webhook receiver: verify the Standard Webhooks signature, deduplicate, answer 2xx fast.

    pip install fastapi uvicorn standardwebhooks
    CALLCOV_WEBHOOK_SECRET=whsec_… uvicorn webhook_receiver:app --port 9000

Get the secret with ``GET /api/v1/webhooks/secret`` (``?mode=test`` for test-mode analyses).
"""

import os

from fastapi import FastAPI, HTTPException, Request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

app = FastAPI()
seen: set[str] = set()  # use your database: a delivery can arrive more than once


@app.post("/callcov")
async def callcov_webhook(request: Request) -> dict[str, bool]:
    body = await request.body()
    try:
        analysis = Webhook(os.environ["CALLCOV_WEBHOOK_SECRET"]).verify(body, dict(request.headers))
    except WebhookVerificationError as exc:
        raise HTTPException(status_code=400, detail="invalid signature") from exc
    event_id = request.headers["webhook-id"]  # the same on every retry of one event
    if event_id not in seen:
        seen.add(event_id)
        if analysis["status"] == "completed":
            disclosures = analysis["results"]["compliance"]["mandatory_disclosures"]
            print(f"{analysis['id']}: missing disclosures {disclosures['missing_disclosures']}")
        else:
            print(f"{analysis['id']} failed: {analysis['error_message']}")
    return {"received": True}
