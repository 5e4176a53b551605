"""The admin API over HTTP: only for the `admin` role; pages, actions, and their audit."""

import uuid
from typing import Any

import pytest
from httpx import AsyncClient

from testsupport.auth_service import (
    bearer,
    grant_role,
    password_login,
    refused_on_bearer_endpoints,
    register,
    running_app,
    settings_for,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def admin(client: AsyncClient, database_url: str) -> dict[str, Any]:
    """The tokens of a new administrator's session."""
    await register(client, "root@example.com", username="root")
    await grant_role(database_url, "root@example.com", "admin")
    return await password_login(client, "root@example.com")


@pytest.fixture
async def ada(client: AsyncClient) -> dict[str, Any]:
    return await register(client, "ada@example.com", username="ada")


async def test_the_admin_api_is_403_without_the_role(
    client: AsyncClient, ada: dict[str, Any]
) -> None:
    tokens = await password_login(client, "ada@example.com")
    for method, path in (
        ("GET", "/auth/admin/accounts"),
        ("GET", f"/auth/admin/accounts/{ada['id']}"),
        ("POST", f"/auth/admin/accounts/{ada['id']}/disable"),
        ("DELETE", f"/auth/admin/accounts/{ada['id']}"),
        ("GET", "/auth/admin/audit"),
    ):
        response = await client.request(method, path, headers=bearer(tokens))
        assert response.status_code == 403, path
        assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/auth/admin/accounts")).status_code == 401


async def test_accounts_page_by_cursor_and_match_a_prefix(
    client: AsyncClient, admin: dict[str, Any]
) -> None:
    for name in ("bob", "bea", "carl", "beth"):
        await register(client, f"{name}@example.com", username=f"{name}-x")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (
            await client.get("/auth/admin/accounts", params=params, headers=bearer(admin))
        ).json()
        seen += [item["email"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen[0] == "root@example.com"
    assert sorted(seen) == sorted(
        [
            "root@example.com",
            "bob@example.com",
            "bea@example.com",
            "carl@example.com",
            "beth@example.com",
        ]
    )
    matched = await client.get(
        "/auth/admin/accounts", params={"query": "BE"}, headers=bearer(admin)
    )
    assert {item["email"] for item in matched.json()["items"]} == {
        "bea@example.com",
        "beth@example.com",
    }
    by_username = await client.get(
        "/auth/admin/accounts", params={"query": "carl-"}, headers=bearer(admin)
    )
    assert [item["username"] for item in by_username.json()["items"]] == ["carl-x"]
    wildcard = await client.get(
        "/auth/admin/accounts", params={"query": "%"}, headers=bearer(admin)
    )
    assert wildcard.json()["items"] == []
    bad = await client.get("/auth/admin/accounts", params={"cursor": "nope"}, headers=bearer(admin))
    assert bad.status_code == 422


async def test_disable_revokes_every_session_and_enable_lets_the_account_back(
    client: AsyncClient, admin: dict[str, Any], ada: dict[str, Any]
) -> None:
    tokens = await password_login(client, "ada@example.com")

    disabled = await client.post(f"/auth/admin/accounts/{ada['id']}/disable", headers=bearer(admin))

    assert disabled.status_code == 200
    assert disabled.json()["disabled"] is True
    refreshed = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 400
    assert await refused_on_bearer_endpoints(client, tokens)
    enabled = await client.post(f"/auth/admin/accounts/{ada['id']}/enable", headers=bearer(admin))
    assert enabled.json()["disabled"] is False
    await password_login(client, "ada@example.com")


async def test_roles_are_set_exactly_and_each_change_audited_with_the_admin(
    client: AsyncClient, admin: dict[str, Any], ada: dict[str, Any]
) -> None:
    path = f"/auth/admin/accounts/{ada['id']}/roles"
    first = await client.put(path, json={"roles": ["support", "billing"]}, headers=bearer(admin))
    assert first.json()["roles"] == ["billing", "support"]
    second = await client.put(path, json={"roles": ["support"]}, headers=bearer(admin))
    assert second.json()["roles"] == ["support"]
    bad = await client.put(path, json={"roles": ["Not A Role"]}, headers=bearer(admin))
    assert bad.status_code == 422

    audit = await client.get(
        "/auth/admin/audit", params={"account_id": ada["id"]}, headers=bearer(admin)
    )
    events = [(item["type"], item["details"].get("role")) for item in audit.json()["items"]]
    # The two grants share a time: their order is the ids'.
    assert events[0] == ("role_revoked", "billing")
    assert set(events[1:3]) == {("role_granted", "support"), ("role_granted", "billing")}
    admin_id = (
        await client.get("/auth/admin/accounts", params={"query": "root"}, headers=bearer(admin))
    ).json()["items"][0]["id"]
    assert all(item["details"]["actor"] == admin_id for item in audit.json()["items"][:3])


async def test_audit_pages_by_cursor_and_filters_by_type(
    client: AsyncClient, admin: dict[str, Any], ada: dict[str, Any]
) -> None:
    for _ in range(3):
        await password_login(client, "ada@example.com")
    params: dict[str, str] = {"account_id": ada["id"], "type": "login_succeeded", "limit": "2"}
    first = (await client.get("/auth/admin/audit", params=params, headers=bearer(admin))).json()
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    second = (
        await client.get(
            "/auth/admin/audit",
            params={**params, "cursor": first["next_cursor"]},
            headers=bearer(admin),
        )
    ).json()
    assert len(second["items"]) == 1
    assert second["next_cursor"] is None
    ids = {item["id"] for item in first["items"] + second["items"]}
    assert len(ids) == 3
    assert {item["type"] for item in first["items"] + second["items"]} == {"login_succeeded"}


async def test_admin_deletion_erases_the_account_and_unknown_ids_are_404(
    client: AsyncClient, admin: dict[str, Any], ada: dict[str, Any]
) -> None:
    tokens = await password_login(client, "ada@example.com")
    deleted = await client.delete(f"/auth/admin/accounts/{ada['id']}", headers=bearer(admin))
    assert deleted.status_code == 204
    assert await refused_on_bearer_endpoints(client, tokens)
    for method, path in (
        ("GET", f"/auth/admin/accounts/{ada['id']}"),
        ("DELETE", f"/auth/admin/accounts/{ada['id']}"),
        ("POST", f"/auth/admin/accounts/{uuid.uuid4()}/disable"),
        ("POST", f"/auth/admin/accounts/{uuid.uuid4()}/enable"),
    ):
        response = await client.request(method, path, headers=bearer(admin))
        assert response.status_code == 404, path
    unknown_roles = await client.put(
        f"/auth/admin/accounts/{uuid.uuid4()}/roles", json={"roles": []}, headers=bearer(admin)
    )
    assert unknown_roles.status_code == 404
    audit = await client.get(
        "/auth/admin/audit", params={"account_id": ada["id"]}, headers=bearer(admin)
    )
    items = audit.json()["items"]
    assert items[0]["type"] == "account_deleted"
    assert "ada" not in audit.text
    assert all(item["client_address"] is None for item in items)


async def test_a_revoked_admin_role_closes_the_api_at_once(
    client: AsyncClient, admin: dict[str, Any], database_url: str
) -> None:
    root_id = (await client.get("/auth/admin/accounts", headers=bearer(admin))).json()["items"][0][
        "id"
    ]
    await client.put(
        f"/auth/admin/accounts/{root_id}/roles", json={"roles": []}, headers=bearer(admin)
    )
    assert (await client.get("/auth/admin/accounts", headers=bearer(admin))).status_code == 403


async def test_a_fresh_app_serves_the_admin_routes_in_its_openapi(database_url: str) -> None:
    async with running_app(settings_for(database_url)) as client:
        paths = (await client.get("/auth/openapi.json")).json()["paths"]
    assert {
        "/auth/admin/accounts",
        "/auth/admin/accounts/{account_id}",
        "/auth/admin/accounts/{account_id}/disable",
        "/auth/admin/accounts/{account_id}/enable",
        "/auth/admin/accounts/{account_id}/roles",
        "/auth/admin/audit",
        "/auth/sessions",
        "/auth/sessions/{session_id}",
        "/auth/account",
    } <= set(paths)
