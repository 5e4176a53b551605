"""Authorization codes: stored as hashes, spent once by a compare-and-set (concurrent
exchanges included), bound to client, redirect URI and PKCE; a replay revokes the session
the first exchange started."""

import asyncio
import hashlib
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import authorization_codes, browser_sessions, sign_in_sessions
from auth_service.authorization_codes import CodeGrant, CodeRejectedError
from auth_service.browser_sessions import CookiePolicy
from auth_service.clock import utcnow
from auth_service.models import Account, AuthorizationCode, SignInSession
from auth_service.sign_in_sessions import SessionPolicy
from service_kit.db import Database
from testsupport.auth_service import add_client
from testsupport.oidc import Pkce

pytestmark = pytest.mark.anyio

REDIRECT_URI = "http://127.0.0.1:9999/callback"
COOKIES = CookiePolicy.for_public_url("http://127.0.0.1:8000", timedelta(hours=1), "signin")
SESSIONS = SessionPolicy(idle_ttl=timedelta(days=1), absolute_ttl=timedelta(days=7))


async def _grant(db: AsyncSession, pkce: Pkce) -> CodeGrant:
    """A signed-in browser's grant to the `web` client."""
    now = utcnow()
    account = Account(
        id=uuid.uuid4(),
        email="c@example.com",
        email_key=f"{uuid.uuid4().hex}@example.com",
        password_hash="$2b$04$" + "x" * 53,
        roles=[],
        disabled=False,
        created_at=now,
        updated_at=now,
        password_changed_at=now,
    )
    db.add(account)
    await db.flush()
    session_id, _ = await browser_sessions.start_browser_session(db, account, COOKIES, now)
    await db.commit()
    return CodeGrant(
        "web", REDIRECT_URI, pkce.challenge, "openid", "n", account.id, session_id, now
    )


@pytest.fixture
async def database(database_url: str) -> Database:
    await add_client(
        database_url,
        "web",
        grant_types=["authorization_code", "refresh_token"],
        scopes=["openid"],
        redirect_uris=[REDIRECT_URI],
    )
    return Database(database_url)


async def _redeem(db: AsyncSession, code: str, pkce: Pkce, **overrides: str) -> CodeGrant:
    arguments = {"client_id": "web", "redirect_uri": REDIRECT_URI, "code_verifier": pkce.verifier}
    return await authorization_codes.redeem_code(db, code, now=utcnow(), **arguments | overrides)


async def test_only_the_codes_hash_is_stored(database: Database) -> None:
    pkce = Pkce.new()
    async with database.db_session() as db:
        code = await authorization_codes.issue_code(
            db, await _grant(db, pkce), now=utcnow(), ttl=timedelta(seconds=60)
        )
        await db.commit()
        stored = (await db.scalars(select(AuthorizationCode.code_hash))).all()
    assert stored == [hashlib.sha256(code.encode()).digest()]
    await database.dispose()


async def test_of_concurrent_exchanges_exactly_one_wins(database: Database) -> None:
    pkce = Pkce.new()
    async with database.db_session() as db:
        code = await authorization_codes.issue_code(
            db, await _grant(db, pkce), now=utcnow(), ttl=timedelta(seconds=60)
        )
        await db.commit()

    async def exchange() -> bool:
        async with database.db_session() as db:
            try:
                await _redeem(db, code, pkce)
            except CodeRejectedError:
                await db.commit()
                return False
            await db.commit()
            return True

    outcomes = await asyncio.gather(*(exchange() for _ in range(5)))
    assert sorted(outcomes) == [False] * 4 + [True]
    await database.dispose()


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"client_id": "other"}, "client_mismatch"),
        ({"redirect_uri": "http://127.0.0.1:9999/other"}, "redirect_uri_mismatch"),
        ({"code_verifier": Pkce.new().verifier}, "pkce_mismatch"),
        ({"code_verifier": "short"}, "bad_verifier"),
    ],
)
async def test_a_code_is_bound_to_client_redirect_uri_and_verifier(
    database: Database, overrides: dict[str, str], reason: str
) -> None:
    pkce = Pkce.new()
    async with database.db_session() as db:
        code = await authorization_codes.issue_code(
            db, await _grant(db, pkce), now=utcnow(), ttl=timedelta(seconds=60)
        )
        with pytest.raises(CodeRejectedError) as refused:
            await _redeem(db, code, pkce, **overrides)
    assert refused.value.reason == reason
    await database.dispose()


async def test_an_expired_code_is_refused(database: Database) -> None:
    pkce = Pkce.new()
    async with database.db_session() as db:
        code = await authorization_codes.issue_code(
            db,
            await _grant(db, pkce),
            now=utcnow() - timedelta(seconds=61),
            ttl=timedelta(seconds=60),
        )
        with pytest.raises(CodeRejectedError) as refused:
            await _redeem(db, code, pkce)
    assert refused.value.reason == "expired"
    await database.dispose()


async def test_a_replay_revokes_the_session_the_first_exchange_started(database: Database) -> None:
    pkce = Pkce.new()
    async with database.db_session() as db:
        grant = await _grant(db, pkce)
        code = await authorization_codes.issue_code(
            db, grant, now=utcnow(), ttl=timedelta(seconds=60)
        )
        await _redeem(db, code, pkce)
        account = await db.get(Account, grant.account_id)
        assert account is not None
        issued = await sign_in_sessions.start_session(
            db, account, client_id="web", scope="openid", policy=SESSIONS, now=utcnow()
        )
        await authorization_codes.record_issued_session(db, code, issued.session_id)
        await db.commit()
        with pytest.raises(CodeRejectedError) as refused:
            await _redeem(db, code, pkce)
        await db.commit()
        session = await db.get(SignInSession, issued.session_id)
    assert refused.value.reason == "replayed"
    assert session is not None
    assert session.revoked_reason == "code_replayed"
    await database.dispose()
