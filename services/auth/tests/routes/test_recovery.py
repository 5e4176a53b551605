"""Mailed links over HTTP: verify the address, reset a forgotten password; each mailed
token single use and short-lived."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import jwt
import pytest
from httpx import AsyncClient
from sqlalchemy import update

from auth_service.clock import utcnow
from auth_service.models import EmailToken
from service_kit.db import Database
from testsupport.auth_service import (
    OTHER_STRONG_PASSWORD,
    STRONG_PASSWORD,
    Mailbox,
    bearer,
    mailed_token,
    password_login,
    refused_on_bearer_endpoints,
    register,
    running_app,
    settings_for,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
async def mail_client(database_url: str, mailbox: Mailbox) -> AsyncIterator[AsyncClient]:
    """The auth app, its mail kept in `mailbox`."""
    async with running_app(settings_for(database_url), mailbox=mailbox) as client:
        yield client


def _claims(tokens: dict[str, str]) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(
        tokens["access_token"], options={"verify_signature": False}
    )
    return claims


async def test_verification_marks_the_address_and_tokens_carry_it(
    mail_client: AsyncClient, mailbox: Mailbox
) -> None:
    await register(mail_client, "vera@example.com")
    tokens = await password_login(mail_client, "vera@example.com")
    assert _claims(tokens)["email_verified"] is False

    asked = await mail_client.post("/auth/email/verify/request", headers=bearer(tokens))

    assert asked.status_code == 202
    message = await mailbox.next_to("vera@example.com")
    assert message["Subject"] == "Confirm your email address"
    token = mailed_token(message)
    assert "/verify-email?token=" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    verified = await mail_client.post("/auth/email/verify", json={"token": token})
    assert verified.status_code == 204
    again = await mail_client.post("/auth/email/verify", json={"token": token})
    assert again.status_code == 400
    assert again.headers["content-type"] == "application/problem+json"
    assert _claims(await password_login(mail_client, "vera@example.com"))["email_verified"] is True
    refreshed = await mail_client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert _claims(refreshed.json())["email_verified"] is True
    # Verified: asking again mails nothing.
    assert (
        await mail_client.post("/auth/email/verify/request", headers=bearer(tokens))
    ).status_code == 202
    with pytest.raises(TimeoutError):
        await mailbox.next_to("vera@example.com", wait_seconds=0.5)


async def test_a_reset_sets_the_password_and_revokes_every_session(
    mail_client: AsyncClient, mailbox: Mailbox
) -> None:
    await register(mail_client, "rita@example.com")
    sessions = [await password_login(mail_client, "rita@example.com") for _ in range(2)]

    asked = await mail_client.post("/auth/password/forgot", json={"email": "Rita@Example.com "})

    assert asked.status_code == 202
    message = await mailbox.next_to("rita@example.com")
    token = mailed_token(message)
    weak = await mail_client.post(
        "/auth/password/reset", json={"token": token, "new_password": "password1"}
    )
    assert weak.status_code == 422
    assert weak.json()["errors"][0]["field"] == "new_password"
    reset = await mail_client.post(
        "/auth/password/reset", json={"token": token, "new_password": OTHER_STRONG_PASSWORD}
    )
    assert reset.status_code == 204, reset.text
    for tokens in sessions:
        refreshed = await mail_client.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        assert refreshed.status_code == 400
        assert await refused_on_bearer_endpoints(mail_client, tokens)
    await password_login(mail_client, "rita@example.com", OTHER_STRONG_PASSWORD)
    replay = await mail_client.post(
        "/auth/password/reset", json={"token": token, "new_password": STRONG_PASSWORD}
    )
    assert replay.status_code == 400


async def test_forgot_answers_alike_for_an_unknown_address_and_mails_nothing(
    mail_client: AsyncClient, mailbox: Mailbox
) -> None:
    await register(mail_client, "known@example.com")
    unknown = await mail_client.post("/auth/password/forgot", json={"email": "nobody@example.com"})
    known = await mail_client.post("/auth/password/forgot", json={"email": "known@example.com"})
    assert (unknown.status_code, unknown.content) == (known.status_code, known.content)
    assert unknown.status_code == 202
    assert set(unknown.headers) == set(known.headers)
    await mailbox.next_to("known@example.com")
    await asyncio.sleep(0.2)
    assert mailbox.messages == []


async def test_forgot_is_throttled_per_address_asked_for(mail_client: AsyncClient) -> None:
    answers = [
        (
            await mail_client.post("/auth/password/forgot", json={"email": "x@example.com"})
        ).status_code
        for _ in range(4)
    ]
    assert answers == [202, 202, 202, 429]  # MAIL_FREE_REQUESTS_PER_RECIPIENT: 3
    throttled = await mail_client.post("/auth/password/forgot", json={"email": "X@example.com"})
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) >= 1
    other = await mail_client.post("/auth/password/forgot", json={"email": "y@example.com"})
    assert other.status_code == 202


async def test_an_expired_or_foreign_token_resets_nothing(
    mail_client: AsyncClient, mailbox: Mailbox, database_url: str
) -> None:
    await register(mail_client, "old@example.com")
    tokens = await password_login(mail_client, "old@example.com")
    await mail_client.post("/auth/password/forgot", json={"email": "old@example.com"})
    reset_token = mailed_token(await mailbox.next_to("old@example.com"))
    await mail_client.post("/auth/email/verify/request", headers=bearer(tokens))
    verify_token = mailed_token(await mailbox.next_to("old@example.com"))
    # A verification token is no reset token, nor the reverse.
    wrong_purpose = await mail_client.post(
        "/auth/password/reset", json={"token": verify_token, "new_password": OTHER_STRONG_PASSWORD}
    )
    assert wrong_purpose.status_code == 400
    assert (
        await mail_client.post("/auth/email/verify", json={"token": reset_token})
    ).status_code == 400
    database = Database(database_url)
    async with database.db_session() as db:
        await db.execute(update(EmailToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        await db.commit()
    await database.dispose()
    expired = await mail_client.post(
        "/auth/password/reset", json={"token": reset_token, "new_password": OTHER_STRONG_PASSWORD}
    )
    assert expired.status_code == 400
    await password_login(mail_client, "old@example.com")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/auth/email/verify", {}),
        ("/auth/email/verify", {"token": ""}),
        ("/auth/password/forgot", {"email": ""}),
        ("/auth/password/reset", {"token": "x"}),
        ("/auth/password/reset", {"token": "x", "new_password": "y", "z": 1}),
    ],
)
async def test_malformed_bodies_are_422(
    shared_client: AsyncClient, path: str, body: dict[str, object]
) -> None:
    response = await shared_client.post(path, json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_verification_needs_a_live_access_token(shared_client: AsyncClient) -> None:
    assert (await shared_client.post("/auth/email/verify/request")).status_code == 401
