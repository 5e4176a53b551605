"""Accounts through the gateway, as a client makes them: register, sign in, read a token."""

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "correct horse battery staple"  # noqa: S105 - the test accounts'


@dataclass
class Account:
    id: str
    email: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def register_and_log_in(client: httpx.Client) -> Account:
    """A new account (POST /auth/register) and its tokens (POST /auth/token, password grant)."""
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    registered = client.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert registered.status_code == 201, registered.text
    tokens = client.post(
        "/auth/token", data={"grant_type": "password", "username": email, "password": PASSWORD}
    )
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    return Account(registered.json()["id"], email, body["access_token"], body["refresh_token"])


def unverified_part(token: str, index: int) -> dict[str, Any]:
    """A JWT's header (0) or claims (1), read without verifying: for asserting, not trusting."""
    segment = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


def log_in(client: httpx.Client, account: Account) -> Account:
    """Fresh tokens for the account (roles are read when a token is issued)."""
    tokens = client.post(
        "/auth/token",
        data={"grant_type": "password", "username": account.email, "password": PASSWORD},
    )
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    return Account(account.id, account.email, body["access_token"], body["refresh_token"])
