"""The auth service as a client meets it, through the gateway: register, sign in, call,
refresh, detect a reused token, revoke, change the password.

Runs on the shared stack (default settings, bcrypt cost 12), so it fails a password as
rarely as it can: the per-address throttle is shared with every other test.
"""

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import jwt
import pytest

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "plaid unicorn jazz teapot"


def _email() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}@example.com"


def _login(gateway: httpx.Client, username: str, password: str = PASSWORD) -> dict[str, Any]:
    response = gateway.post(
        "/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def _refresh(gateway: httpx.Client, token: str) -> httpx.Response:
    return gateway.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": token})


def _verify(gateway: httpx.Client, access_token: str) -> dict[str, Any]:
    """Check a token as a resource server would: discovery, then the key set it names."""
    discovery = gateway.get("/.well-known/openid-configuration").json()
    jwks = httpx.get(discovery["jwks_uri"]).json()
    header = jwt.get_unverified_header(access_token)
    assert header["typ"] == "at+jwt"
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims: dict[str, Any] = jwt.decode(
        access_token,
        key,
        algorithms=["RS256"],
        audience="auth-platform",
        issuer=discovery["issuer"],
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
    )
    return claims


def test_register_login_refresh_reuse_revoke_and_change_password(gateway: httpx.Client) -> None:
    email, username = _email(), f"u{uuid.uuid4().hex[:10]}"
    registered = gateway.post(
        "/auth/register", json={"email": email, "password": PASSWORD, "username": username}
    )
    assert registered.status_code == 201, registered.text
    account_id = registered.json()["id"]

    by_email, by_username = _login(gateway, email.upper()), _login(gateway, username)
    for tokens in (by_email, by_username):
        claims = _verify(gateway, tokens["access_token"])
        assert claims["sub"] == account_id
        assert claims["roles"] == []

    # Refresh rotates; presenting the spent token again ends that whole session.
    rotated = _refresh(gateway, by_email["refresh_token"])
    assert rotated.status_code == 200
    assert _refresh(gateway, by_email["refresh_token"]).json()["error"] == "invalid_grant"
    assert _refresh(gateway, rotated.json()["refresh_token"]).json()["error"] == "invalid_grant"

    # Revocation (RFC 7009) ends a session; 200 whatever the token.
    third = _login(gateway, email)
    assert gateway.post("/auth/revoke", data={"token": third["refresh_token"]}).status_code == 200
    assert _refresh(gateway, third["refresh_token"]).json()["error"] == "invalid_grant"
    assert gateway.post("/auth/revoke", data={"token": "nothing-of-ours"}).status_code == 200

    # Changing the password keeps this session and ends every other one.
    other = _login(gateway, username)
    this = by_username
    changed = gateway.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers={"Authorization": f"Bearer {this['access_token']}"},
    )
    assert changed.status_code == 204, changed.text
    assert _refresh(gateway, other["refresh_token"]).json()["error"] == "invalid_grant"
    assert _refresh(gateway, this["refresh_token"]).status_code == 200
    _login(gateway, email, NEW_PASSWORD)


def test_ten_simultaneous_registrations_of_one_email_give_one_201(gateway: httpx.Client) -> None:
    email = _email()
    with ThreadPoolExecutor(10) as pool:
        statuses = list(
            pool.map(
                lambda _: (
                    gateway.post(
                        "/auth/register", json={"email": email, "password": PASSWORD}
                    ).status_code
                ),
                range(10),
            )
        )
    assert sorted(statuses) == [201] + [409] * 9


def test_eight_simultaneous_refreshes_of_one_token_give_one_200(gateway: httpx.Client) -> None:
    email = _email()
    assert gateway.post("/auth/register", json={"email": email, "password": PASSWORD}).is_success
    token = _login(gateway, email)["refresh_token"]
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: _refresh(gateway, token).status_code, range(8)))
    assert sorted(statuses) == [200] + [400] * 7


def test_discovery_urls_work_through_the_gateway(gateway: httpx.Client) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        document = gateway.get(path).json()
        assert document["issuer"] == str(gateway.base_url).rstrip("/")
        jwks = httpx.get(document["jwks_uri"])
        assert jwks.status_code == 200
        assert jwks.headers["cache-control"].startswith("public, max-age=")
        assert jwks.headers["etag"]
        # An unknown grant at the advertised token endpoint is an RFC 6749 answer.
        answer = httpx.post(document["token_endpoint"], data={"grant_type": "implicit"})
        assert answer.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize(
    ("path", "body", "content_type", "status"),
    [
        ("/auth/token", b"grant_type=password&grant_type=password", None, 400),
        ("/auth/token", b"grant_type=password&username=\xff&password=x", None, 400),
        ("/auth/token", b'{"grant_type": "password"}', "application/json", 400),
        ("/auth/revoke", b"", None, 400),
        (
            "/auth/register",
            b'{"email": "x@example.com", "password": "short"}',
            "application/json",
            422,
        ),
        ("/auth/register", b"\xff", "application/json", 400),
        ("/auth/register", b"email=x", None, 415),
    ],
)
def test_bad_input_is_a_clear_error_never_a_500(
    gateway: httpx.Client, path: str, body: bytes, content_type: str | None, status: int
) -> None:
    response = gateway.post(
        path,
        content=body,
        headers={"Content-Type": content_type or "application/x-www-form-urlencoded"},
    )
    assert response.status_code == status, response.text
    expected = "application/json" if path != "/auth/register" else "application/problem+json"
    assert response.headers["content-type"] == expected
