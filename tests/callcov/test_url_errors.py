"""A refused URL is reported by the domain it belongs to: a bad ``webhook_url`` is the webhook error (400
``invalid_url``, naming webhook_url), a bad ``audio_url`` is still ``InvalidAudioUrl``. The kit's network
errors never reach a client as they are."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import aclosing

import httpx
import pytest
from conftest import FakeDns, SignUp, create_key
from test_submission import WAV, form, submit

from callcov.analyses.download import stream_download
from callcov.analyses.errors import InvalidAudioUrl
from callcov.config import NetworkSettings
from callcov.kit.network.errors import UrlRefused
from callcov.webhooks.errors import InvalidWebhookUrl
from callcov.webhooks.sender import check_webhook_url

pytestmark = pytest.mark.asyncio

BAD_URLS = ("http://127.0.0.1:9/hook", "http://169.254.169.254/latest", "ftp://example.com/x")


def _error(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_url"
    return error  # type: ignore[no-any-return]


async def test_bad_webhook_url_at_submission_is_the_webhook_error(
    client: httpx.AsyncClient, signed_up: SignUp
) -> None:
    key = await create_key(client, await signed_up(), "test")
    for url in BAD_URLS:
        error = _error(await submit(client, key, webhook_url=url))
        assert "webhook_url" in str(error["message"]), error


async def test_bad_webhook_url_on_the_webhook_route_is_the_webhook_error(
    client: httpx.AsyncClient, signed_up: SignUp
) -> None:
    key = await create_key(client, await signed_up(), "test")
    created = await submit(client, key, audio=WAV)
    assert created.status_code == 201, created.text
    analysis_id = created.json()["id"]
    for url in BAD_URLS:
        response = await client.post(
            f"/api/v1/analysis/{analysis_id}/webhook", json={"webhook_url": url}, headers={"X-API-Key": key}
        )
        assert "webhook_url" in str(_error(response)["message"])


async def test_bad_audio_url_is_still_the_audio_error(client: httpx.AsyncClient, signed_up: SignUp) -> None:
    key = await create_key(client, await signed_up(), "test")
    for url in BAD_URLS:
        response = await client.post("/api/v1/analysis", json=form(audio_url=url), headers={"X-API-Key": key})
        assert "webhook_url" not in str(_error(response)["message"])


@pytest.mark.parametrize("url", [*BAD_URLS, "http://missing.example.test/hook"])
async def test_the_classes_each_domain_raises(url: str, fake_dns: Callable[..., FakeDns]) -> None:
    fake_dns({})  # no name resolves
    with pytest.raises(InvalidWebhookUrl) as webhook:
        await check_webhook_url(url, NetworkSettings())
    assert webhook.value.code == "invalid_url" and webhook.value.status_code == 400
    assert isinstance(webhook.value.__cause__, UrlRefused)
    with pytest.raises(InvalidAudioUrl) as audio:
        async with aclosing(stream_download(url, allow=(), max_bytes=10, timeout_s=5)) as chunks:
            async for _ in chunks:
                pass
    assert not isinstance(audio.value, InvalidWebhookUrl)
