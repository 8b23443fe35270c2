"""Rubrics as an API resource (issue 14): built-ins and the account's own, versions, archiving,
validation of documents (422 with the field's path), scoping, and scoring a submission with one."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from conftest import SignUp, create_key
from fastapi import FastAPI
from test_pipeline import FakeTranscriber, runner_for
from test_submission import submit

pytestmark = pytest.mark.asyncio

FEE_NOTICE = {
    "id": "fee_notice",
    "description": "The agent states that the call is free of charge",
    "patterns": ["this call is free of charge"],
}


def h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


async def default_document(client: httpx.AsyncClient, key: str) -> dict[str, Any]:
    r = await client.get("/api/v1/rubrics/default", headers=h(key))
    assert r.status_code == 200, r.text
    return r.json()["document"]


async def with_fee_notice(client: httpx.AsyncClient, key: str) -> dict[str, Any]:
    document = copy.deepcopy(await default_document(client, key))
    document["disclosures"].append(FEE_NOTICE)
    document["name"] = "Acme with fee notice"
    return document


async def create(client: httpx.AsyncClient, key: str, document: dict[str, Any], name: str = "Acme"):  # type: ignore[no-untyped-def]
    return await client.post("/api/v1/rubrics", json={"name": name, "document": document}, headers=h(key))


async def test_builtins_listed_and_fetchable(client: httpx.AsyncClient, signed_up: SignUp) -> None:
    key = await create_key(client, await signed_up(), "test")
    listed = (await client.get("/api/v1/rubrics", headers=h(key))).json()
    assert listed["object"] == "list" and listed["total"] >= 1 and listed["has_more"] is False
    default = next(item for item in listed["items"] if item["id"] == "default")
    assert default["builtin"] is True and "1" in default["versions"] and "2" in default["versions"]
    assert default["version"] == default["latest_version"] == default["versions"][-1]
    latest = (await client.get("/api/v1/rubrics/default", headers=h(key))).json()
    assert latest["version"] == default["latest_version"] and latest["document"]["id"] == "default"
    v2 = (await client.get("/api/v1/rubrics/default@2", headers=h(key))).json()
    assert v2["version"] == "2" and v2["document"]["version"] == "2"
    assert (await client.get("/api/v1/rubrics/default@99", headers=h(key))).status_code == 404
    assert (await client.get("/api/v1/rubrics/nope", headers=h(key))).status_code == 404
    schema = (await client.get("/api/v1/rubrics/schema", headers=h(key))).json()
    assert "disclosures" in schema["properties"] and "llm" in schema["required"]


async def test_create_version_archive(client: httpx.AsyncClient, signed_up: SignUp) -> None:
    key = await create_key(client, await signed_up(), "test")
    document = await with_fee_notice(client, key)
    r = await create(client, key, document)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"].startswith("rub_") and body["object"] == "rubric" and body["version"] == "1"
    assert body["created"] > 0 and body["livemode"] is False and body["builtin"] is False
    assert body["document"]["id"] == body["id"] and body["document"]["version"] == "1"
    rid = body["id"]
    document["disclosures"] = document["disclosures"][:-1]
    r = await client.post(f"/api/v1/rubrics/{rid}/versions", json={"document": document}, headers=h(key))
    assert r.status_code == 201, r.text
    assert r.json()["version"] == "2" and r.json()["versions"] == ["1", "2"]
    v1 = (await client.get(f"/api/v1/rubrics/{rid}@1", headers=h(key))).json()
    assert "fee_notice" in [d["id"] for d in v1["document"]["disclosures"]]  # immutable
    latest = (await client.get(f"/api/v1/rubrics/{rid}", headers=h(key))).json()
    assert latest["version"] == "2" and "fee_notice" not in [
        d["id"] for d in latest["document"]["disclosures"]
    ]
    listed = (await client.get("/api/v1/rubrics?skip=1&limit=1", headers=h(key))).json()
    assert [item["id"] for item in listed["items"]] == [rid] and listed["total"] == 2
    assert (await client.delete(f"/api/v1/rubrics/{rid}", headers=h(key))).json()["archived"] is True
    assert rid not in [i["id"] for i in (await client.get("/api/v1/rubrics", headers=h(key))).json()["items"]]
    archived = (await client.get("/api/v1/rubrics?include_archived=true", headers=h(key))).json()
    assert rid in [i["id"] for i in archived["items"]]
    assert (await client.get(f"/api/v1/rubrics/{rid}", headers=h(key))).status_code == 200
    r = await client.post(f"/api/v1/rubrics/{rid}/versions", json={"document": document}, headers=h(key))
    assert r.status_code == 409
    r = await submit(client, key, rubric=rid)
    assert r.status_code == 400 and "archived" in r.json()["error"]["message"]
    assert (await client.delete("/api/v1/rubrics/default", headers=h(key))).status_code == 400


async def test_scored_with_the_account_rubric(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
) -> None:
    key = await create_key(client, await signed_up(), "test")
    rid = (await create(client, key, await with_fee_notice(client, key))).json()["id"]
    r = await submit(client, key, rubric=f"{rid}@1")
    assert r.status_code == 201, r.text
    plain = await submit(client, key)
    await runner_for(app, FakeTranscriber()).drain()
    body = (await client.get(f"/api/v1/analysis/{r.json()['id']}", headers=h(key))).json()
    assert body["status"] == "completed", body["metadata"]
    assert body["results"]["rubric"] == {"id": rid, "version": "1"}
    disclosures = body["results"]["compliance"]["mandatory_disclosures"]
    assert "fee_notice" in disclosures["missing_disclosures"]
    assert "call_recording_notice" in disclosures["matched_disclosures"]
    other = (await client.get(f"/api/v1/analysis/{plain.json()['id']}", headers=h(key))).json()
    assert other["results"]["rubric"]["id"] == "default"
    assert "fee_notice" not in other["results"]["compliance"]["mandatory_disclosures"]["missing_disclosures"]


async def test_scoped_to_account_and_mode(client: httpx.AsyncClient, signed_up: SignUp) -> None:
    owner = await signed_up()
    key = await create_key(client, owner, "test")
    rid = (await create(client, key, await default_document(client, key))).json()["id"]
    for other in (
        await create_key(client, await signed_up(), "test"),
        await create_key(client, owner, "live"),
    ):
        assert (await client.get(f"/api/v1/rubrics/{rid}", headers=h(other))).status_code == 404
        assert (await client.get(f"/api/v1/rubrics/{rid}@1", headers=h(other))).status_code == 404
        assert (await client.delete(f"/api/v1/rubrics/{rid}", headers=h(other))).status_code == 404
        document = await default_document(client, other)
        r = await client.post(
            f"/api/v1/rubrics/{rid}/versions", json={"document": document}, headers=h(other)
        )
        assert r.status_code == 404
        listed = (await client.get("/api/v1/rubrics", headers=h(other))).json()
        assert rid not in [i["id"] for i in listed["items"]]
        r = await submit(client, other, rubric=rid)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "validation_error"
        assert r.json()["error"]["message"] == f"Unknown rubric '{rid}'"


def _error(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"]["code"] == "validation_error"
    return body["detail"][0]


async def test_bad_documents_refused(client: httpx.AsyncClient, signed_up: SignUp) -> None:
    key = await create_key(client, await signed_up(), "test")
    good = await default_document(client, key)

    invalid = copy.deepcopy(good)
    invalid["disclosures"][0]["patterns"] = ["this call (is"]
    err = _error(await create(client, key, invalid))
    assert err["loc"][:5] == ["body", "document", "disclosures", 0, "patterns"]
    assert "invalid pattern" in err["msg"]

    nested = copy.deepcopy(good)
    nested["greeting"]["patterns"].append("(a+)+$")
    err = _error(await create(client, key, nested))
    assert err["loc"] == ["body", "document", "greeting", "patterns", len(nested["greeting"]["patterns"]) - 1]
    assert err["type"] == "regex_unsafe" and "catastrophic" in err["msg"]

    slow = copy.deepcopy(good)
    slow["prohibited_phrases"].append({"pattern": "(a|aa)+$", "category": "test"})
    err = _error(await create(client, key, slow))
    index = len(slow["prohibited_phrases"]) - 1
    assert err["loc"] == ["body", "document", "prohibited_phrases", index, "pattern"]
    assert err["type"] == "regex_unsafe"

    many = copy.deepcopy(good)
    many["disclosures"] = [{"id": f"d{i}", "description": "", "patterns": ["x"]} for i in range(10_000)]
    err = _error(await create(client, key, many))
    assert err["loc"] == ["body", "document", "disclosures"] and "at most 200" in err["msg"]

    large = copy.deepcopy(good)
    large["description"] = "x" * 3000
    large["disclosures"] = [{**FEE_NOTICE, "id": f"d{i}", "description": "y" * 3000} for i in range(100)]
    assert _error(await create(client, key, large))["type"] == "too_large"

    long_pattern = copy.deepcopy(good)
    long_pattern["empathy"]["patterns"] = ["x" * 501]
    assert _error(await create(client, key, long_pattern))["loc"] == [
        "body",
        "document",
        "empathy",
        "patterns",
        0,
    ]

    wrong_type = copy.deepcopy(good)
    wrong_type["identity"]["window_s"] = "soon"
    err = _error(await create(client, key, wrong_type))
    assert err["loc"] == ["body", "document", "identity", "window_s"]

    not_object = await client.post("/api/v1/rubrics", json={"name": "x", "document": []}, headers=h(key))
    assert _error(not_object)["loc"] == ["body", "document"]
    listed = (await client.get("/api/v1/rubrics", headers=h(key))).json()
    assert [i["id"] for i in listed["items"] if not i["builtin"]] == []  # nothing was stored


async def test_create_is_idempotent(client: httpx.AsyncClient, signed_up: SignUp) -> None:
    key = await create_key(client, await signed_up(), "test")
    body = {"name": "Acme", "document": await default_document(client, key)}
    headers = {**h(key), "Idempotency-Key": "rubric-1"}
    first = await client.post("/api/v1/rubrics", json=body, headers=headers)
    again = await client.post("/api/v1/rubrics", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json()["id"] == first.json()["id"]
    listed = (await client.get("/api/v1/rubrics", headers=h(key))).json()
    assert [i["id"] for i in listed["items"] if not i["builtin"]] == [first.json()["id"]]
