"""The published development secrets serve loopback only (issue 12, finding 10a): staging and
production refuse them, ``callcov-serve`` refuses to bind another address with them, and an app
running with them answers no connection that arrived on a non-loopback address."""

from __future__ import annotations

import httpx
import pytest
from conftest import TEST_SECRET
from pydantic import ValidationError

from callcov.config import DEV_SECRET, InsecureBind, Settings
from callcov.main import create_app

STRONG = {
    "auth": {"jwt_secret": TEST_SECRET, "api_key_pepper": TEST_SECRET},
    "webhooks": {"encryption_keys": [TEST_SECRET]},
}


class TestSettings:
    def test_defaults_are_development_with_published_secrets(self) -> None:
        settings = Settings()
        assert settings.environment == "development"
        assert set(settings.placeholder_secrets()) == {
            "CALLCOV_AUTH__JWT_SECRET",
            "CALLCOV_AUTH__API_KEY_PEPPER",
            "CALLCOV_WEBHOOKS__ENCRYPTION_KEYS",
        }
        assert Settings(**STRONG).placeholder_secrets() == []

    @pytest.mark.parametrize("environment", ["staging", "production"])
    def test_deployed_environments_refuse_them(self, environment: str) -> None:
        with pytest.raises(ValidationError, match="CALLCOV_AUTH__JWT_SECRET"):
            Settings(environment=environment)
        Settings(environment=environment, **STRONG)

    @pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
    def test_loopback_may_use_them(self, host: str) -> None:
        Settings().check_bind(host)

    @pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "callcov.example.com", ""])
    def test_any_other_address_is_refused(self, host: str) -> None:
        with pytest.raises(InsecureBind, match="CALLCOV_AUTH__JWT_SECRET"):
            Settings().check_bind(host)
        Settings(**STRONG).check_bind(host)

    def test_a_short_secret_counts_as_a_placeholder(self) -> None:
        settings = Settings(
            auth={"jwt_secret": "short", "api_key_pepper": TEST_SECRET}, webhooks=STRONG["webhooks"]
        )
        assert settings.placeholder_secrets() == ["CALLCOV_AUTH__JWT_SECRET"]


@pytest.mark.asyncio
class TestLoopbackGuard:
    async def request(self, settings: Settings, base_url: str) -> httpx.Response:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 50000))
            async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
                return await client.get("/api/v1/billing/tiers")

    async def test_a_connection_to_a_public_address_is_refused(self, tmp_path) -> None:  # type: ignore[no-untyped-def]
        settings = Settings(data_dir=tmp_path, db={"url": f"sqlite:///{tmp_path}/x.db"})
        r = await self.request(settings, "http://10.1.2.3:8000")
        assert r.status_code == 503 and r.json()["error"]["code"] == "insecure_configuration"
        assert "CALLCOV_AUTH__JWT_SECRET" in r.json()["error"]["message"]

    async def test_loopback_and_real_secrets_are_served(self, tmp_path) -> None:  # type: ignore[no-untyped-def]
        from callcov.db import run_migrations

        dev = Settings(data_dir=tmp_path, db={"url": f"sqlite:///{tmp_path}/x.db"})
        run_migrations(dev)
        assert (await self.request(dev, "http://127.0.0.1:8000")).status_code == 200
        strong = Settings(data_dir=tmp_path, db={"url": f"sqlite:///{tmp_path}/x.db"}, **STRONG)
        assert (await self.request(strong, "http://10.1.2.3:8000")).status_code == 200


def test_dev_secret_is_the_published_one() -> None:
    assert Settings().auth.jwt_secret == DEV_SECRET


def test_generate_secrets_prints_an_env_file_that_passes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from callcov import cli

    assert cli.main(["generate-secrets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for line in lines:
        name, _, value = line.partition("=")
        monkeypatch.setenv(name, value)
    settings = Settings(environment="production")
    assert settings.placeholder_secrets() == [] and len(lines) == 3
    settings.check_bind("0.0.0.0")
