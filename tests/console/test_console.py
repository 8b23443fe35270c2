"""The review console in a real browser (issue 15): Playwright drives the Debian chromium against a
real uvicorn server of the app (PostgreSQL, Redis), signs in, uploads a call, and walks every page at
laptop and phone widths, with an axe-core check of each. The analysis jobs are worked in this process
by the production runners, with a transcriber test double (``Scripted``: a recorded transcript; the
real model is exercised in tests/deployments).

Screenshots go to a temporary folder; with ``CALLCOV_CONSOLE_SCREENSHOTS=1`` to docs/console/ (the
committed ones: ``scripts/console-screenshots.sh``)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from conftest import SignUp, job_runners, server_env, uvicorn_server
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).parents[1] / "callcov"))
from test_analytics import NAMELESS, Scripted  # noqa: E402
from test_pipeline import TRANSCRIPT, segment  # noqa: E402
from test_submission import tone_wav  # noqa: E402

from callcov.state import state_of_app  # noqa: E402

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).parents[2]
WIDTHS = {"laptop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
SERIOUS = ("serious", "critical")
# The call without the agent's name, in which the customer reads a card number (redacted when stored).
WITH_CARD = NAMELESS.model_copy(
    update={
        "segments": [
            *NAMELESS.segments,
            segment("customer", "My card is 4111 1111 1111 1111 thanks.", 10.0),
        ]
    }
)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "the console tests need the Debian chromium (scripts/system-packages.sh installs it)"
    return path


@pytest.fixture
def console_url(app: FastAPI, pg_url: str) -> Iterator[str]:
    """A uvicorn server of the app over the test database and the app's data folder (so the jobs
    worked here read the audio it stored)."""
    data_dir = str(state_of_app(app).settings.data_dir)
    with uvicorn_server(server_env(pg_url, CALLCOV_DATA_DIR=data_dir)) as url:
        yield url


@pytest_asyncio.fixture
async def browser(chromium: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
        )
        yield browser
        await browser.close()


def shots_dir(tmp_path: Path) -> Path:
    if os.environ.get("CALLCOV_CONSOLE_SCREENSHOTS") == "1":
        return ROOT / "docs" / "console"
    return tmp_path


async def check_page(page: Any, name: str, shots: Path) -> None:
    """axe-core finds no serious or critical violation; a screenshot at each width."""
    from axe_playwright_python.async_playwright import Axe

    for width, size in WIDTHS.items():
        await page.set_viewport_size(size)
        await page.wait_for_timeout(150)
        results = await Axe().run(page)
        serious = [v for v in results.response["violations"] if v.get("impact") in SERIOUS]
        assert not serious, f"{name} at {width}: {[(v['id'], v['help'], v['nodes'][:2]) for v in serious]}"
        await page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
    await page.set_viewport_size(WIDTHS["laptop"])


async def until(page: Any, expression: str, timeout_s: float = 30) -> None:
    """Poll ``expression`` in the page until it is true (``wait_for_function`` would evaluate it
    with ``new Function``, which the console's Content-Security-Policy refuses)."""
    for _ in range(int(timeout_s * 10)):
        if await page.evaluate(expression):
            return
        await page.wait_for_timeout(100)
    raise AssertionError(f"never true: {expression}")


async def sign_in(page: Any, url: str, email: str, password: str) -> None:
    await page.goto(f"{url}/console")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="Calls (live data)").wait_for()


async def upload(page: Any, path: Path, agent: str, contact: str) -> None:
    await page.get_by_label("Recording").set_input_files(str(path))
    await page.get_by_label("Agent id", exact=True).first.fill(agent)
    await page.get_by_label("Contact id", exact=True).first.fill(contact)
    await page.get_by_role("button", name="Upload").click()  # clears the last upload's status
    await page.get_by_text("Submitted:").wait_for()


async def work(app: FastAPI, transcript: Any) -> None:
    runners = job_runners(app, Scripted(transcript), worker={"concurrency": 1})
    await runners.only("transcription", "scoring").drain()


async def test_the_console_end_to_end(
    app: FastAPI, signed_up: SignUp, console_url: str, browser: Any, tmp_path: Path
) -> None:
    url, shots = console_url, shots_dir(tmp_path)
    account = await signed_up()
    recording = tmp_path / "call.wav"
    recording.write_bytes(tone_wav(seconds=14.0))
    page = await (await browser.new_context(viewport=WIDTHS["laptop"])).new_page()

    await page.goto(f"{url}/console")
    await page.get_by_role("heading", name="Sign in to CallCov").wait_for()
    await check_page(page, "sign-in", shots)
    await sign_in(page, url, account.email, account.password)
    await page.get_by_label("Data").select_option("test")
    await page.get_by_text("Test mode: you are viewing test data").wait_for()

    # Upload a call, let the dispatcher's runners work it, see it completed with its chips.
    await upload(page, recording, "agent-7", "contact-1")
    await work(app, TRANSCRIPT)
    await upload(page, recording, "agent-7", "contact-2")
    await work(app, WITH_CARD)
    await page.reload()
    await page.get_by_role("heading", name="Calls (2)").wait_for()
    assert await page.get_by_text("Identity: pass").count() == 1
    assert await page.get_by_text("Identity: fail").count() == 1, await page.locator("main").inner_text()
    await check_page(page, "calls", shots)

    # Filter by a failed check: only the call without the agent's name.
    await page.get_by_label("Failed check").select_option("identity_verification")
    await page.get_by_role("button", name="Apply filters").click()
    await page.get_by_role("heading", name="Calls (1)").wait_for()
    assert await page.get_by_role("link", name="contact-2").count() == 1
    assert await page.get_by_role("link", name="contact-1").count() == 0

    # One call: click an evidence quote, the audio plays from the quote's start.
    await page.goto(f"{url}/console#/calls")
    await page.get_by_role("link", name="contact-1").click()
    await page.get_by_role("heading", name="Scorecard").wait_for()
    call_id = page.url.split("#/calls/")[1]
    await until(page, "document.querySelector('audio').readyState >= 1")
    quote = page.locator("button.quote", has_text="my name is John").first
    start = float(await quote.get_attribute("data-start"))
    await quote.click()
    await until(page, "document.querySelector('audio').currentTime > 0")
    current = await page.evaluate("document.querySelector('audio').currentTime")
    assert abs(current - start) <= 0.5, (current, start)
    assert await page.locator(".word.lit").count() >= 1
    assert await page.get_by_text("Not applicable:").count() >= 1  # a reason shown
    await check_page(page, "call", shots)

    # The card number of the other call is shown as redacted.
    await page.goto(f"{url}/console#/calls")
    await page.get_by_role("link", name="contact-2").click()
    await page.locator("mark.redacted", has_text="[CREDIT_CARD]").first.wait_for()
    assert "4111" not in await page.locator("main").inner_text()

    # An expired access token is refreshed silently.
    await page.evaluate("sessionStorage.setItem('cc.access', 'expired')")
    await page.reload()
    await page.get_by_role("heading", name="Scorecard").wait_for()
    assert await page.evaluate("sessionStorage.getItem('cc.access')") != "expired"

    # The agent's scorecard.
    await page.get_by_role("link", name="Agents").click()
    await page.get_by_role("link", name="agent-7").click()
    await page.get_by_role("heading", name="Agent agent-7").wait_for()
    await page.get_by_text("2 calls").wait_for()
    assert await page.locator("svg.chart").count() == 1
    await check_page(page, "agent", shots)
    await page.get_by_role("link", name="← All agents").click()
    await page.get_by_role("link", name="agent-7").wait_for()
    await check_page(page, "agents", shots)

    # Settings: a key shown once, then revoked.
    await page.get_by_role("link", name="Settings").click()
    await page.get_by_role("button", name="Create key").click()
    key = await page.locator("code.new-key").text_content()
    assert key and key.startswith("sk_test_")
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/api/v1/analysis", headers={"X-API-Key": key})).json()["total"] == 2
        await page.get_by_role("button", name=f"Revoke {key[:12]}").click()
        await page.get_by_text("Revoked").wait_for()
        assert (await client.get("/api/v1/analysis", headers={"X-API-Key": key})).status_code == 401
    await page.get_by_text("minutes (free plan)").wait_for()
    secret = page.locator("code.secret-value")
    await page.get_by_role("button", name="Show").click()
    shown = await secret.text_content()
    assert shown and shown.startswith("whsec_")
    await page.get_by_role("button", name="Rotate").click()
    await until(page, "document.querySelector('code.secret-value').textContent.startsWith('whsec_')")
    await until(page, f"document.querySelector('code.secret-value').textContent !== {shown!r}")
    await check_page(page, "settings", shots)
    call_url = f"{url}/console#/calls"

    # A second account sees none of it, in either mode.
    other = await signed_up()
    page2 = await (await browser.new_context(viewport=WIDTHS["laptop"])).new_page()
    await sign_in(page2, url, other.email, other.password)
    for mode in ("live", "test"):
        await page2.get_by_label("Data").select_option(mode)
        await page2.goto(call_url)
        await page2.get_by_text("No calls match.").wait_for()
        await page2.get_by_role("link", name="Agents").click()
        await page2.get_by_text("No completed calls in this period.").wait_for()
    await page2.goto(f"{url}/console#/calls/{call_id}")
    await page2.get_by_role("alert").wait_for()
    assert "not found" in (await page2.get_by_role("alert").text_content() or "").lower()
