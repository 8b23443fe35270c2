"""Verification and reset codes are never stored or logged in the clear outside development, the
outbox is pruned, and a new reset request does not kill the links already sent (issue 12, finding 6)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import PASSWORD, TEST_SECRET, last_email_token, make_settings, running, sign_up, unique_email
from sqlmodel import col, select
from test_email_smtp import Inbox, smtp  # noqa: F401  (fixture)

from callcov.config import Environment, Settings
from callcov.kit.time import utcnow
from callcov.main import create_app
from callcov.models import EmailMessage
from callcov.state import state_of_app

pytestmark = pytest.mark.asyncio

_counter = itertools.count()


@pytest.fixture
def known_tokens(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Email tokens become predictable (and recorded), so a test can look for them anywhere."""
    issued: list[str] = []

    def fake() -> str:
        token = f"KnownToken{next(_counter):04d}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        issued.append(token)
        return token

    monkeypatch.setattr("callcov.auth.service.generate_url_token", fake)
    yield issued


def deployed_settings(pg_url: str, data_dir: Path, environment: str, **groups: Any) -> Settings:
    settings = make_settings(pg_url, data_dir, webhooks={"encryption_keys": [TEST_SECRET]}, **groups)
    return settings.model_copy(update={"environment": Environment(environment)})


@asynccontextmanager
async def service(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(settings)) as client:
        yield client


async def outbox_bodies(client: httpx.AsyncClient, email: str) -> list[str]:
    app = client._transport.app  # type: ignore[attr-defined]
    async with state_of_app(app).sessionmaker() as session:
        rows = await session.exec(select(EmailMessage).where(col(EmailMessage.to_address) == email))
        return [row.body_text for row in rows.all()]


@pytest.mark.parametrize("environment", ["staging", "production"])
async def test_outside_development_codes_are_neither_stored_nor_logged(
    pg_url: str,
    tmp_path: Path,
    environment: str,
    known_tokens: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    email = unique_email()
    caplog.set_level(logging.DEBUG)
    async with service(deployed_settings(pg_url, tmp_path, environment)) as client:
        r = await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201
        await client.post("/api/v1/auth/password-reset", json={"email": email})
        bodies = await outbox_bodies(client, email)
        # The codes still work: only what is kept and logged is redacted.
        verified = await client.post("/api/v1/auth/verify-email", json={"code": known_tokens[0]})
        assert verified.status_code == 200
    assert len(bodies) == 2 and len(known_tokens) == 2
    for token in known_tokens:
        assert not any(token in body for body in bodies)
        assert token not in caplog.text
    assert all("[redacted]" in body for body in bodies)


async def test_smtp_gets_the_code_the_outbox_does_not(
    pg_url: str,
    tmp_path: Path,
    smtp: tuple[Inbox, int],  # noqa: F811
    known_tokens: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    inbox, port = smtp
    email = unique_email()
    caplog.set_level(logging.DEBUG)
    settings = deployed_settings(pg_url, tmp_path, "production", email={"backend": "smtp", "smtp_port": port})
    async with service(settings) as client:
        await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        mail = await inbox.wait_for(email, "Verify your CallCov email")
        bodies = await outbox_bodies(client, email)
    (token,) = known_tokens
    assert token in mail.get_content()
    assert token not in bodies[0] and token not in caplog.text


async def test_in_development_the_code_is_in_the_log(
    pg_url: str, tmp_path: Path, known_tokens: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The README's first session: the verification code is copied from the service's log."""
    email = unique_email()
    caplog.set_level(logging.INFO)
    async with service(deployed_settings(pg_url, tmp_path, "development")) as client:
        await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    (token,) = known_tokens
    assert token in caplog.text


async def test_prune_deletes_old_outbox_messages(app: Any) -> None:
    from callcov.emails.service import prune_outbox

    old, recent = unique_email(), unique_email()
    state = state_of_app(app)
    retention = state.settings.email.outbox_retention_s
    async with state.sessionmaker() as session:
        session.add(
            EmailMessage(
                to_address=old,
                subject="s",
                body_text="b",
                kind="verify_email",
                created_at=utcnow() - timedelta(seconds=retention + 60),
            )
        )
        session.add(EmailMessage(to_address=recent, subject="s", body_text="b", kind="verify_email"))
        await session.commit()
    assert await prune_outbox(state.sessionmaker, state.settings.email) >= 1
    async with state.sessionmaker() as session:
        left = (await session.exec(select(EmailMessage.to_address))).all()
    assert old not in left and recent in left


class TestResetLinks:
    async def reset(self, client: httpx.AsyncClient, app: Any, email: str) -> str:
        await client.post("/api/v1/auth/password-reset", json={"email": email})
        return await last_email_token(app, email, "password_reset")

    async def confirm(self, client: httpx.AsyncClient, token: str) -> int:
        r = await client.post(
            "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": "N3w-passw0rd!"}
        )
        return r.status_code

    async def test_a_new_request_keeps_the_earlier_link(
        self, client: httpx.AsyncClient, app: Any, signed_up: Any
    ) -> None:
        account = await signed_up()
        first = await self.reset(client, app, account.email)
        second = await self.reset(client, app, account.email)
        assert await self.confirm(client, first) == 200
        assert await self.confirm(client, second) == 400  # using one link ends the others

    async def test_at_most_three_links_are_open(self, settings_factory: Any) -> None:
        # Three reset emails an hour per address (the default) never open a fourth link within a
        # link's 15 minutes; an operator who allows more still gets at most three open.
        app = create_app(settings_factory(auth={"password_reset_per_hour": 10}))
        async with running(app) as client:
            account = await sign_up(client, app)
            links = [await self.reset(client, app, account.email) for _ in range(4)]
            assert len(set(links)) == 4
            assert await self.confirm(client, links[0]) == 400  # the oldest made way for the fourth
            assert await self.confirm(client, links[1]) == 200
