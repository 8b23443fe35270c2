"""Email through a real SMTP server on loopback (aiosmtpd): sign-up and reset links arrive by mail."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from conftest import PASSWORD, free_port, token_in, unique_email

pytestmark = pytest.mark.asyncio


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    async def wait_for(self, to: str, subject: str, timeout: float = 5.0) -> Any:
        for _ in range(int(timeout / 0.05)):
            for message in reversed(self.messages):
                if message["To"] == to and subject in message["Subject"]:
                    return message
            await asyncio.sleep(0.05)
        raise AssertionError(f"no mail '{subject}' to {to}")


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


async def test_sign_up_and_reset_by_mail(app_factory, smtp: tuple[Inbox, int]) -> None:  # type: ignore[no-untyped-def]
    inbox, port = smtp
    email = unique_email()
    async with app_factory(email={"backend": "smtp", "smtp_port": port}) as client:
        assert (
            await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        ).status_code == 201
        mail = await inbox.wait_for(email, "Verify your CallCov email")
        assert "verify-email?token=" in mail.get_content()
        tokens = await client.post("/api/v1/auth/verify-email", json={"code": token_in(mail.get_content())})
        assert tokens.status_code == 200

        await client.post("/api/v1/auth/password-reset", json={"email": email})
        reset = await inbox.wait_for(email, "Reset your CallCov password")
        r = await client.post(
            "/api/v1/auth/password-reset/confirm",
            json={"token": token_in(reset.get_content()), "new_password": "N3w-passw0rd!"},
        )
        assert r.status_code == 200


async def test_smtp_down_keeps_the_message_in_the_outbox(app_factory) -> None:  # type: ignore[no-untyped-def]
    from sqlmodel import select

    from callcov.models import EmailMessage

    email = unique_email()
    async with app_factory(
        email={"backend": "smtp", "smtp_port": free_port(), "smtp_timeout_s": 2}
    ) as client:
        r = await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201
        app = client._transport.app  # type: ignore[attr-defined]
        async with app.state.callcov.sessionmaker() as session:
            message = (await session.exec(select(EmailMessage).where(EmailMessage.to_address == email))).one()
        assert message.sent_at is None and message.error
