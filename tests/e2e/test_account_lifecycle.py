"""The account lifecycle through the gateway: a password reset and an address verification
read from the mail sink `make run` starts, the caller's sessions listed and one revoked, an
administrator disabling an account, and an account erased.

Runs on the shared stack; each test has accounts of its own.
"""

import uuid
from typing import Any

import httpx
import jwt
import pytest

from testsupport.stack import Stack

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "plaid unicorn jazz teapot"


def _email() -> str:
    return f"life-{uuid.uuid4().hex[:12]}@example.com"


def _register(gateway: httpx.Client, email: str) -> dict[str, Any]:
    response = gateway.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _login(gateway: httpx.Client, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = gateway.post(
        "/auth/token", data={"grant_type": "password", "username": email, "password": password}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def _refresh(gateway: httpx.Client, tokens: dict[str, Any]) -> httpx.Response:
    return gateway.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )


def _token_in(message: Any) -> str:
    text = message.get_body(("plain",)).get_content()
    return str(text.split("?token=", 1)[1].split()[0])


def _refused(gateway: httpx.Client, tokens: dict[str, Any]) -> bool:
    """The access token gets 401 at auth's bearer endpoints."""
    answers = [
        gateway.get("/auth/sessions", headers=_bearer(tokens)),
        gateway.post("/auth/email/verify/request", headers=_bearer(tokens)),
    ]
    return all(answer.status_code == 401 for answer in answers)


def test_a_forgotten_password_is_reset_with_the_mailed_link(
    stack: Stack, gateway: httpx.Client
) -> None:
    stack.require_local()
    email = _email()
    _register(gateway, email)
    before = _login(gateway, email)

    asked = gateway.post("/auth/password/forgot", json={"email": email})
    unknown = gateway.post("/auth/password/forgot", json={"email": _email()})

    assert (asked.status_code, unknown.status_code) == (202, 202)
    message = stack.mail_to(email, "Reset your password")
    assert message.get_body(("html",)) is not None
    token = _token_in(message)
    reset = gateway.post(
        "/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert reset.status_code == 204, reset.text
    assert _refresh(gateway, before).status_code == 400
    assert _refused(gateway, before)
    _login(gateway, email, NEW_PASSWORD)
    replayed = gateway.post("/auth/password/reset", json={"token": token, "new_password": PASSWORD})
    assert replayed.status_code == 400


def test_the_address_is_verified_with_the_mailed_link(stack: Stack, gateway: httpx.Client) -> None:
    stack.require_local()
    email = _email()
    _register(gateway, email)
    tokens = _login(gateway, email)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["email_verified"] is False

    asked = gateway.post("/auth/email/verify/request", headers=_bearer(tokens))

    assert asked.status_code == 202
    token = _token_in(stack.mail_to(email, "Confirm your email address"))
    assert gateway.post("/auth/email/verify", json={"token": token}).status_code == 204
    refreshed = _refresh(gateway, tokens).json()
    claims = jwt.decode(refreshed["access_token"], options={"verify_signature": False})
    assert claims["email_verified"] is True


def test_the_caller_lists_its_sessions_and_revokes_one(gateway: httpx.Client) -> None:
    email = _email()
    _register(gateway, email)
    phone, laptop = _login(gateway, email), _login(gateway, email)

    listed = gateway.get("/auth/sessions", headers=_bearer(laptop))

    assert listed.status_code == 200
    items = listed.json()["items"]
    assert len(items) == 2
    phone_session = next(item for item in items if not item["current"])
    revoked = gateway.delete(f"/auth/sessions/{phone_session['id']}", headers=_bearer(laptop))
    assert revoked.status_code == 204
    assert _refresh(gateway, phone).status_code == 400
    assert _refused(gateway, phone)
    assert [
        item["current"]
        for item in gateway.get("/auth/sessions", headers=_bearer(laptop)).json()["items"]
    ] == [True]


@pytest.fixture(scope="module")
def admin(stack: Stack) -> dict[str, Any]:
    """An administrator's tokens (the role granted with the CLI, as an operator does)."""
    stack.require_local()
    email = _email()
    with httpx.Client(base_url=stack.url, timeout=10) as gateway:
        _register(gateway, email)
        granted = stack.cli("auth", "accounts", "grant-role", email, "admin")
        assert granted.returncode == 0, granted.stderr
        return _login(gateway, email)


def test_an_administrator_disables_an_account_and_its_tokens_stop_working(
    gateway: httpx.Client, admin: dict[str, Any]
) -> None:
    email = _email()
    account = _register(gateway, email)
    tokens = _login(gateway, email)
    found = gateway.get(
        "/auth/admin/accounts", params={"query": email}, headers=_bearer(admin)
    ).json()
    assert [item["id"] for item in found["items"]] == [account["id"]]

    disabled = gateway.post(f"/auth/admin/accounts/{account['id']}/disable", headers=_bearer(admin))

    assert disabled.status_code == 200
    assert _refresh(gateway, tokens).status_code == 400
    assert _refused(gateway, tokens)
    audit = gateway.get(
        "/auth/admin/audit",
        params={"account_id": account["id"], "type": "account_disabled"},
        headers=_bearer(admin),
    ).json()
    admin_id = jwt.decode(admin["access_token"], options={"verify_signature": False})["sub"]
    assert [item["details"]["actor"] for item in audit["items"]] == [admin_id]


def test_an_account_erased_by_its_owner_is_gone(gateway: httpx.Client) -> None:
    email = _email()
    _register(gateway, email)
    tokens = _login(gateway, email)

    erased = gateway.request(
        "DELETE", "/auth/account", json={"password": PASSWORD}, headers=_bearer(tokens)
    )

    assert erased.status_code == 204, erased.text
    assert _refresh(gateway, tokens).status_code == 400
    assert _refused(gateway, tokens)
    login = gateway.post(
        "/auth/token", data={"grant_type": "password", "username": email, "password": PASSWORD}
    )
    assert login.status_code == 400
