"""Issue 13, finding 1: a card number, SSN or bank account number read out in a call appears nowhere in
what CallCov stores or sends: not in the analysis (transcript text, segments, words, results), not in
any row of any table (the scoring job's payload, the webhook event), not in the webhook body a real
receiver gets, not in the logs. The real submission, analysis stages, database and delivery run; the
transcriber is a test double that "hears" the numbers (the real model is in tests/deployments)."""

from __future__ import annotations

import json
import logging
import re

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel
from test_pipeline import FakeTranscriber, segment
from webhook_receiver import Receiver
from webhook_support import (  # noqa: F401  (wapp, wclient, webhook_db: fixtures that h needs)
    Harness,
    h,
    pump,
    receiver,
    wapp,
    wclient,
    webhook_db,
    webhook_runner,
)

from callcov.inference.transcript import Transcript
from callcov.state import state_of_app

pytestmark = pytest.mark.asyncio

CARD_SPOKEN = "four five three two, one five one one, two eight three zero, three three six six"
CARD_DIGITS = "4532151128303366"
SSN, ACCOUNT = "219-09-9999", "0012 3456 7890"
HEARD = Transcript(
    language="en",
    duration_s=40.0,
    diarization="channels",
    model="double",
    segments=[
        segment("agent", "Hello, thank you for calling Acme Bank, my name is John.", 0.5),
        segment("agent", "This call may be recorded. Can I take the card number?", 4.0),
        segment("customer", f"Sure, it is {CARD_SPOKEN}.", 8.0),
        segment("customer", f"Or use the other one, {CARD_DIGITS}.", 16.0),
        segment("agent", "And your social security number for the account?", 21.0),
        segment("customer", f"It is {SSN}. The account number is {ACCOUNT}.", 24.0),
    ],
)
# Whole numbers and their leading parts (the last four digits may be shown).
NUMBERS = [CARD_DIGITS, "45321511", "21909", "001234567890", "00123456"]
SPOKEN = re.compile(r"(?:(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)\W+){5,}", re.I)


def leaks(blob: str) -> list[str]:
    """The numbers of the call (last four digits excepted) found in ``blob``, digits compared only."""
    digits_only = re.sub(r"[^0-9]", "", blob)
    found = [n for n in NUMBERS if n in digits_only]
    return found + SPOKEN.findall(blob)


async def all_rows(h: Harness) -> str:
    async with state_of_app(h.app).sessionmaker() as session:
        dump = []
        for table in SQLModel.metadata.sorted_tables:
            rows = (await session.exec(text(f'SELECT * FROM "{table.name}"'))).all()  # type: ignore[call-overload]
            dump.append(f"{table.name}: {[tuple(map(str, row)) for row in rows]}")
    return "\n".join(dump)


async def test_no_number_anywhere(
    h: Harness, receiver: tuple[Receiver, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hook, url = receiver
    account, key = await h.account("live")
    hook.secrets = [await h.secret(account, "live")]
    analysis_id = await h.submit(key, url)

    class Hearing(FakeTranscriber):
        async def transcribe(self, request):  # type: ignore[no-untyped-def]
            await super().transcribe(request)
            return HEARD

    await h.process(Hearing())
    await pump(webhook_runner(h.app), lambda: h.finished(analysis_id))

    body = await h.analysis(key, analysis_id)
    assert body["status"] == "completed", body
    sensitive = body["results"]["compliance"]["sensitive_data"]
    assert [(i["type"], i["text"]) for i in sensitive["instances"]] == [
        ("credit_card", "**** **** **** 3366"),
        ("credit_card", "**** **** **** 3366"),
        ("ssn", "***-**-9999"),
        ("account_number", "****7890"),
    ]
    transcript = body["transcript"]
    assert "[CREDIT_CARD]" in transcript["text"] and "[SSN]" in transcript["text"]
    assert [r["type"] for r in transcript["redactions"]] == [
        "credit_card", "credit_card", "ssn", "account_number",
    ]  # fmt: skip
    [delivery] = hook.received
    for name, blob in {
        "analysis": json.dumps(body),
        "webhook body": delivery.body.decode(),
        "database": await all_rows(h),
        "logs": "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records),
    }.items():
        assert leaks(blob) == [], name
