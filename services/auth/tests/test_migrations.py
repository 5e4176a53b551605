"""The auth service's Alembic history: agrees with the models, and goes both ways; and a
session stored before the client registry (0003) continues after it."""

import asyncio
import secrets
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from sqlalchemy import insert

from auth_service.clock import utcnow
from auth_service.migrations import HISTORY
from auth_service.models import Account, Base, RefreshToken, SignInSession
from auth_service.sign_in_sessions import hash_token
from service_kit.db import Database
from testsupport.auth_service import add_client, running_app, settings_for
from testsupport.migrations import MigrationHistoryTests

# Columns added after a revision, which an insert must leave out to write a row of then.
_ADDED_AFTER = {
    "0002": {"accounts": {"email_verified"}, "session_families": {"last_used_at"}},
    "0003": {"accounts": {"email_verified"}, "session_families": {"last_used_at"}},
}


def _as_stored_then(model: Any, revision: str) -> sa.TableClause:
    """The model's table as it was at `revision` (typed columns, no Python defaults)."""
    table = model.__table__
    later = _ADDED_AFTER[revision].get(table.name, set())
    return sa.table(
        table.name, *(sa.column(c.name, c.type) for c in table.columns if c.name not in later)
    )


class TestAuthHistory(MigrationHistoryTests):
    history = HISTORY
    metadata = Base.metadata


@pytest.mark.anyio
async def test_a_session_started_before_the_client_registry_refreshes_after_it(
    new_database: Callable[[], str],
) -> None:
    url = new_database()
    await asyncio.to_thread(HISTORY.upgrade, url, "0002")
    # Two sessions as the service stored them before 0003: one of a client that named
    # none (no client id), one of a client that named itself (any id was accepted then).
    now = utcnow()
    account_id = uuid.uuid4()
    tokens = {"unnamed": secrets.token_urlsafe(32), "web-app": secrets.token_urlsafe(32)}
    database = Database(url)
    async with database.engine.begin() as connection:
        await connection.execute(
            insert(_as_stored_then(Account, "0002")).values(
                id=account_id,
                email="old@example.com",
                email_key="old@example.com",
                password_hash="$2b$04$" + "x" * 53,
                roles=[],
                disabled=False,
                created_at=now,
                updated_at=now,
                password_changed_at=now,
            )
        )
        for client_id, token in (("unnamed", tokens["unnamed"]), ("web-app", tokens["web-app"])):
            family_id = uuid.uuid4()
            await connection.execute(
                insert(SignInSession).values(
                    id=family_id,
                    account_id=account_id,
                    client_id=None if client_id == "unnamed" else client_id,
                    scope="profile",
                    created_at=now,
                    expires_at=now + timedelta(days=30),
                )
            )
            await connection.execute(
                insert(RefreshToken).values(
                    id=uuid.uuid4(),
                    family_id=family_id,
                    token_hash=hash_token(token),
                    issued_at=now,
                    expires_at=now + timedelta(days=14),
                )
            )
    await database.dispose()

    await asyncio.to_thread(HISTORY.upgrade, url)
    async with running_app(settings_for(url)) as client:

        async def refresh(token: str, **client_form: str) -> Any:
            return await client.post(
                "/auth/token",
                data={"grant_type": "refresh_token", "refresh_token": token, **client_form},
            )

        # Naming no client, as before: the default client continues it.
        first = await refresh(tokens["unnamed"])
        assert first.status_code == 200, first.text
        claims = jwt.decode(first.json()["access_token"], options={"verify_signature": False})
        assert (claims["sub"], claims["client_id"]) == (str(account_id), "public")
        # Naming the default client works as well, on the successor.
        second = await refresh(first.json()["refresh_token"], client_id="public")
        assert second.status_code == 200, second.text
        # A client that named itself continues once an operator has registered it.
        unregistered = await refresh(tokens["web-app"], client_id="web-app")
        assert unregistered.json()["error"] == "invalid_client"
        await add_client(url, "web-app", "public")
        registered = await refresh(tokens["web-app"], client_id="web-app")
        assert registered.status_code == 200, registered.text


@pytest.mark.anyio
async def test_columns_added_and_dropped_in_place_keep_every_session(
    new_database: Callable[[], str],
) -> None:
    """0004 and 0005 add columns to `session_families` and `accounts`: on SQLite a table
    copied and dropped (batch mode) would take every session with it (ON DELETE CASCADE)."""
    url = new_database()
    await asyncio.to_thread(HISTORY.upgrade, url, "0003")
    now = utcnow()
    account_id, session_id = uuid.uuid4(), uuid.uuid4()
    database = Database(url)
    async with database.engine.begin() as connection:
        await connection.execute(
            insert(_as_stored_then(Account, "0002")).values(
                id=account_id,
                email="kept@example.com",
                email_key="kept@example.com",
                password_hash="$2b$04$" + "x" * 53,
                roles=[],
                disabled=False,
                created_at=now,
                updated_at=now,
                password_changed_at=now,
            )
        )
        await connection.execute(
            insert(_as_stored_then(SignInSession, "0003")).values(
                id=session_id,
                account_id=account_id,
                client_id="public",
                scope="profile",
                created_at=now,
                expires_at=now + timedelta(days=1),
            )
        )
    await database.dispose()

    async def sessions() -> int:
        database = Database(url)
        try:
            async with database.engine.connect() as connection:
                count = await connection.scalar(sa.text("SELECT COUNT(*) FROM session_families"))
                return int(count or 0)
        finally:
            await database.dispose()

    await asyncio.to_thread(HISTORY.upgrade, url)
    assert await sessions() == 1
    await asyncio.to_thread(HISTORY.downgrade, url, "0003")
    assert await sessions() == 1
