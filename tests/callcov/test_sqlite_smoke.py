"""The embedded default: the same flows on a SQLite file, built by the migrations, with no Redis."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from conftest import PASSWORD, last_email_token, running, sqlite_settings, unique_email

from callcov.main import create_app

pytestmark = [pytest.mark.asyncio, pytest.mark.sqlite]


async def test_sign_up_keys_and_idempotency_on_sqlite(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path, ratelimit={"default_per_window": 3})
    app = create_app(settings)
    async with running(app) as client:
        email = unique_email()
        assert (
            await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        ).status_code == 201
        code = await last_email_token(app, email, "verify_email")
        tokens = (await client.post("/api/v1/auth/verify-email", json={"code": code})).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}", "Idempotency-Key": str(uuid.uuid4())}
        created = await client.post("/api/v1/api-keys", json={"mode": "test"}, headers=headers)
        replay = await client.post("/api/v1/api-keys", json={"mode": "test"}, headers=headers)
        assert created.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
        key = created.json()["api_key"]
        listed = await client.get("/api/v1/analysis", headers={"X-API-Key": key})
        assert listed.status_code == 200 and listed.json()["total"] == 0
        # In-process rate limiting (no Redis configured): the key's 4th request in the window is refused.
        codes = [
            (await client.get("/api/v1/analysis", headers={"X-API-Key": key})).status_code for _ in range(3)
        ]
        assert codes[-1] == 429
    assert (tmp_path / "callcov.db").exists()


async def test_webhook_delivery_on_sqlite(tmp_path: Path) -> None:
    import asyncio

    from conftest import asgi_in_thread, create_key, sign_up
    from test_pipeline import FakeTranscriber, runner_for
    from test_submission import submit
    from webhook_receiver import Receiver
    from webhook_support import webhook_runner

    from callcov.models import DisabledWebhookUrl
    from callcov.state import state_of_app

    settings = sqlite_settings(tmp_path, network={"url_allow": ["127.0.0.0/8"]})
    app = create_app(settings)
    hook = Receiver()
    async with running(app) as client:
        account = await sign_up(client, app)
        key = await create_key(client, account, "test")
        secrets = await asyncio.gather(
            *(client.get("/api/v1/webhooks/secret?mode=test", headers=account.headers) for _ in range(3))
        )
        assert len({r.json()["secret"] for r in secrets}) == 1  # created once, even when asked at once
        hook.secrets = [secrets[0].json()["secret"]]
        hook.answer(200, 410)
        with asgi_in_thread(hook) as url:
            ids = [(await submit(client, key, webhook_url=f"{url}/hook")).json()["id"] for _ in range(2)]
            await runner_for(app, FakeTranscriber()).drain()
            await webhook_runner(app).drain()
        assert sorted(item.json()["id"] for item in hook.received) == sorted(ids)
        assert all(item.verified_by == [0] for item in hook.received)
        async with state_of_app(app).sessionmaker() as session:
            from sqlmodel import select

            assert len((await session.exec(select(DisabledWebhookUrl))).all()) == 1
