"""The users service through the gateway, with tokens the real auth service issued."""

import base64
import json

import httpx

from testsupport.accounts import log_in, register_and_log_in, unverified_part
from testsupport.stack import Stack


def test_me_answers_the_profile_of_a_freshly_registered_account(
    gateway: httpx.Client,
) -> None:
    account = register_and_log_in(gateway)
    response = gateway.get("/users/me", headers=account.headers)
    assert response.status_code == 200, response.text
    profile = response.json()
    assert profile["id"] == account.id == unverified_part(account.access_token, 1)["sub"]
    assert (profile["display_name"], profile["bio"], profile["avatar_url"]) == (None, None, None)


def test_a_profile_is_updated_and_shown_to_others(gateway: httpx.Client) -> None:
    owner, viewer = register_and_log_in(gateway), register_and_log_in(gateway)
    changes = {"display_name": "Ada", "avatar_url": "https://avatars.example/ada.png"}
    updated = gateway.patch("/users/me", json=changes, headers=owner.headers)
    assert updated.status_code == 200, updated.text
    assert {name: updated.json()[name] for name in changes} == changes

    refused = gateway.patch(
        "/users/me", json={"avatar_url": "http://x.example"}, headers=owner.headers
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"

    public = gateway.get(f"/users/{owner.id}", headers=viewer.headers)
    assert public.status_code == 200
    assert public.json() == {"id": owner.id, "bio": None, **changes}


def test_the_listing_needs_the_admin_role_and_pages_through_everyone(
    gateway: httpx.Client, stack: Stack
) -> None:
    user = register_and_log_in(gateway)
    gateway.get("/users/me", headers=user.headers)
    assert gateway.get("/users", headers=user.headers).status_code == 403

    granted = stack.cli("auth", "accounts", "grant-role", user.email, "admin")
    assert granted.returncode == 0, granted.stderr
    admin = log_in(gateway, user)
    assert "admin" in unverified_part(admin.access_token, 1)["roles"]

    seen: list[str] = []
    url = "/users?limit=3"
    while url:
        page = gateway.get(url, headers=admin.headers)
        assert page.status_code == 200, page.text
        seen += [item["id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        url = f"/users?limit=3&cursor={cursor}" if cursor else ""
    assert user.id in seen
    assert len(seen) == len(set(seen))


def test_missing_and_forged_tokens_get_the_rfc6750_challenges(gateway: httpx.Client) -> None:
    account = register_and_log_in(gateway)
    missing = gateway.get("/users/me")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"

    header, claims, signature = account.access_token.split(".")
    admin_claims = {**unverified_part(account.access_token, 1), "roles": ["admin"]}
    swapped = base64.urlsafe_b64encode(json.dumps(admin_claims).encode()).decode().rstrip("=")
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"at+jwt"}').decode().rstrip("=")
    forged = [
        f"{header}.{swapped}.{signature}",
        f"{none_header}.{claims}.",
        f"{header}.{claims}.",
        account.refresh_token,
    ]
    bodies = set()
    for token in forged:
        response = gateway.get("/users/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        bodies.add(response.text)
    assert len(bodies) == 1
