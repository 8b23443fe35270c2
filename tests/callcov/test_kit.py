"""Unit tests of the small shared pieces: metadata rules, key format, body fingerprints, settings."""

from __future__ import annotations

import io

import pytest

from callcov.config import Settings
from callcov.idempotency.body import fingerprint
from callcov.kit.metadata import InvalidMetadata, validate_metadata
from callcov.kit.tokens import api_key_checksum_ok, generate_api_key


class TestMetadata:
    def test_accepts_the_limits(self) -> None:
        data = {f"k{i}": "v" * 500 for i in range(50)}
        assert validate_metadata(data) == data
        assert validate_metadata(None) == {}
        assert validate_metadata({"x" * 40: "ok"}) == {"x" * 40: "ok"}

    @pytest.mark.parametrize(
        "data",
        [
            {f"k{i}": "v" for i in range(51)},
            {"x" * 41: "v"},
            {"k": "v" * 501},
            {"k": 5},
            {"": "v"},
            ["not", "an", "object"],
        ],
    )
    def test_refuses_more(self, data: object) -> None:
        with pytest.raises(InvalidMetadata) as info:
            validate_metadata(data)
        assert info.value.status_code == 400 and info.value.code == "validation_error"


class TestApiKeyFormat:
    def test_checksum(self) -> None:
        key = generate_api_key("test")
        assert key.startswith("sk_test_") and api_key_checksum_ok(key)
        tampered = key[:-7] + ("A" if key[-7] != "A" else "B") + key[-6:]
        assert not api_key_checksum_ok(tampered)
        assert generate_api_key("live") != generate_api_key("live")


def _fp(content_type: str, body: bytes) -> str:
    return fingerprint("POST", "/p", b"", content_type, io.BytesIO(body), len(body))


class TestFingerprint:
    def test_json_key_order_and_spacing_do_not_matter(self) -> None:
        assert _fp("application/json", b'{"a":1,"b":[1,2]}') == _fp(
            "application/json", b'{ "b": [1, 2], "a": 1 }'
        )
        assert _fp("application/json", b'{"a":1}') != _fp("application/json", b'{"a":2}')

    def test_multipart_boundary_does_not_matter(self) -> None:
        def form(boundary: str, value: str) -> bytes:
            return (
                f'--{boundary}\r\nContent-Disposition: form-data; name="agent_id"\r\n\r\n{value}\r\n--{boundary}--\r\n'
            ).encode()

        one = _fp("multipart/form-data; boundary=aaaa1111", form("aaaa1111", "x" * 200_000))
        two = _fp("multipart/form-data; boundary=bbbb2222", form("bbbb2222", "x" * 200_000))
        other = _fp("multipart/form-data; boundary=bbbb2222", form("bbbb2222", "y" * 200_000))
        assert one == two != other

    def test_path_is_part_of_it(self) -> None:
        body = b"{}"
        assert fingerprint("POST", "/a", b"", "application/json", io.BytesIO(body), 2) != fingerprint(
            "POST", "/b", b"", "application/json", io.BytesIO(body), 2
        )

    def test_query_is_part_of_it_in_any_order(self) -> None:
        def fp(query: bytes) -> str:
            return fingerprint("POST", "/a", query, "application/json", io.BytesIO(b"{}"), 2)

        assert fp(b"mode=live") != fp(b"mode=test") != fp(b"")
        assert fp(b"a=1&mode=test") == fp(b"mode=test&a=1")


class TestSettings:
    def test_nested_environment_variables(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CALLCOV_RATELIMIT__DEFAULT_PER_WINDOW", "7")
        monkeypatch.setenv("CALLCOV_DB__URL", "postgres://u@h/db")
        settings = Settings()
        assert settings.ratelimit.default_per_window == 7
        assert settings.database_url == "postgresql+psycopg://u@h/db"

    def test_url_allow_is_a_network_setting(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CALLCOV_NETWORK__URL_ALLOW", '["127.0.0.0/8"]')
        assert Settings().network.url_allow == ["127.0.0.0/8"]
        monkeypatch.setenv("CALLCOV_STORAGE__URL_ALLOW", '["127.0.0.0/8"]')
        with pytest.raises(ValueError, match="CALLCOV_NETWORK__URL_ALLOW"):  # the old name is not ignored
            Settings()

    def test_embedded_default_is_sqlite(self, tmp_path) -> None:  # type: ignore[no-untyped-def]
        settings = Settings(data_dir=tmp_path)
        assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path}/callcov.db"
        assert settings.redis.url == ""

    @pytest.mark.parametrize("secret", ["changethis", "change-me-in-production-0123456789abcdef", "short"])
    def test_production_refuses_placeholder_secrets(self, secret: str) -> None:
        with pytest.raises(ValueError, match="JWT_SECRET"):
            Settings(environment="production", auth={"jwt_secret": secret, "api_key_pepper": "p" * 40})

    def test_production_accepts_real_secrets(self) -> None:
        Settings(
            environment="production",
            auth={"jwt_secret": "s" * 40, "api_key_pepper": "p" * 40},
            webhooks={"encryption_keys": ["k" * 40, "old" * 12]},
        )

    def test_production_refuses_the_default_webhook_key(self) -> None:
        with pytest.raises(ValueError, match="WEBHOOKS__ENCRYPTION_KEYS"):
            Settings(environment="production", auth={"jwt_secret": "s" * 40, "api_key_pepper": "p" * 40})
