"""`POST /users/events` over HTTP: only the publisher's token; then the revoked tokens are
refused at once by this replica."""

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from testsupport.tokens import JwksServer, SigningKey, claims_for, mint, service_claims_for
from testsupport.users_service import running_app, settings_for

pytestmark = pytest.mark.anyio


def publisher(key: SigningKey, scope: str = "events:publish") -> dict[str, str]:
    token = mint(key, service_claims_for("events-publisher", scope=scope))
    return {"Authorization": f"Bearer {token}"}


def batch(*events: tuple[str, uuid.UUID, uuid.UUID | None]) -> dict[str, Any]:
    return {
        "events": [
            {
                "id": str(uuid.uuid4()),
                "sequence": index,
                "type": kind,
                "account_id": str(account),
                "session_id": str(session) if session else None,
                "occurred_at": datetime.now(UTC).isoformat(),
                "data": {},
            }
            for index, (kind, account, session) in enumerate(events, start=1)
        ]
    }


async def test_only_the_publishers_token_may_deliver_events(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    body = batch(("account.created", uuid.uuid4(), None))
    assert (await client.post("/users/events", json=body)).status_code == 401
    person = {"Authorization": f"Bearer {mint(signing_key, claims_for(scope='events:publish'))}"}
    assert (await client.post("/users/events", json=body, headers=person)).status_code == 403
    other = publisher(signing_key, scope="users:read")
    assert (await client.post("/users/events", json=body, headers=other)).status_code == 403
    ok = await client.post("/users/events", json=body, headers=publisher(signing_key))
    assert ok.status_code == 204, ok.text


async def test_revoked_tokens_are_refused_at_once_and_a_repeat_changes_nothing(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    account, session = uuid.uuid4(), uuid.uuid4()
    other = uuid.uuid4()
    token = {"Authorization": f"Bearer {mint(signing_key, claims_for(account, sid=str(session)))}"}
    others = {"Authorization": f"Bearer {mint(signing_key, claims_for(other))}"}
    assert (await client.get("/users/me", headers=token)).status_code == 200
    assert (await client.get("/users/me", headers=others)).status_code == 200
    body = batch(("session.revoked", account, session), ("account.disabled", other, None))
    for _ in range(2):  # delivered twice: the second is a no-op, still a 204
        sent = await client.post("/users/events", json=body, headers=publisher(signing_key))
        assert sent.status_code == 204, sent.text
        assert (await client.get("/users/me", headers=token)).status_code == 401
        assert (await client.get("/users/me", headers=others)).status_code == 401
    enabled = batch(("account.enabled", other, None))
    assert (
        await client.post("/users/events", json=enabled, headers=publisher(signing_key))
    ).status_code == 204
    assert (await client.get("/users/me", headers=others)).status_code == 200


async def test_a_malformed_batch_is_a_422_that_changes_nothing(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    account = uuid.uuid4()
    body = batch(("account.disabled", account, None), ("session.revoked", account, None))
    answer = await client.post("/users/events", json=body, headers=publisher(signing_key))
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    token = {"Authorization": f"Bearer {mint(signing_key, claims_for(account))}"}
    assert (await client.get("/users/me", headers=token)).status_code == 200
    missing = await client.post(
        "/users/events", json={"events": [{}]}, headers=publisher(signing_key)
    )
    assert missing.status_code == 422


async def test_another_replica_refuses_the_tokens_too(
    database_url: str, jwks_server: JwksServer, signing_key: SigningKey, backend: str
) -> None:
    """Two apps on one database: the events land on one; the other reloads its deny list,
    at once on PostgreSQL (NOTIFY; the periodic reload is set longer than the wait here),
    within the reload interval on SQLite."""
    reload_seconds = 5.0 if backend == "postgresql" else 0.2
    settings = settings_for(database_url, deny_list_reload_seconds=reload_seconds)
    account = uuid.uuid4()
    token = {"Authorization": f"Bearer {mint(signing_key, claims_for(account))}"}
    async with (
        running_app(settings, jwks_server) as first,
        running_app(settings, jwks_server) as second,
    ):
        assert (await second.get("/users/me", headers=token)).status_code == 200
        await asyncio.sleep(0.2)  # the second one's listener is up
        body = batch(("account.disabled", account, None))
        sent = await first.post("/users/events", json=body, headers=publisher(signing_key))
        assert sent.status_code == 204
        started = time.monotonic()
        while (await second.get("/users/me", headers=token)).status_code != 401:
            assert time.monotonic() - started < 2, "the other replica still accepts the token"
            await asyncio.sleep(0.05)
