"""Access tokens: RFC 9068 shape, and every check verification makes."""

import uuid
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from auth_service.clock import utcnow
from auth_service.key_encryption import KeyEncryption
from auth_service.key_store import SigningKeyStore
from auth_service.keys import KeyTimings
from auth_service.tokens import (
    InvalidAccessTokenError,
    TokenIssuer,
    access_token_claims,
    issue_access_token,
    verify_access_token,
)
from service_kit.db import Database

pytestmark = pytest.mark.anyio

ISSUER = TokenIssuer("https://id.example", "auth-platform", timedelta(minutes=15))
TIMINGS = KeyTimings(publish_delay=timedelta(seconds=1), retention=timedelta(minutes=16))


@pytest.fixture
async def keys(database: Database) -> SigningKeyStore:
    store = SigningKeyStore(database, KeyEncryption("test-kek"), TIMINGS, 300)
    await store.bootstrap()
    return store


def _issue(keys: SigningKeyStore, **overrides: Any) -> str:
    arguments: dict[str, Any] = {
        "subject": str(uuid.uuid4()),
        "session_id": uuid.uuid4(),
        "client_id": "public",
        "scope": "profile",
        "roles": ["admin"],
        "now": utcnow(),
    }
    return issue_access_token(keys, ISSUER, **{**arguments, **overrides})


async def test_tokens_follow_rfc_9068(keys: SigningKeyStore) -> None:
    account_id = uuid.uuid4()
    token = _issue(keys, subject=str(account_id))
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "RS256", "kid": header["kid"], "typ": "at+jwt"}
    claims = jwt.decode(token, options={"verify_signature": False})
    assert {"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "roles"} <= set(claims)
    assert claims["sub"] == str(account_id)
    assert claims["exp"] - claims["iat"] == 900
    assert claims["client_id"] == "public"
    assert verify_access_token(token, keys, ISSUER).account_id == account_id


def _forge(claims: dict[str, Any], key: Any, **header: Any) -> str:
    return jwt.encode(claims, key, algorithm=header.pop("alg", "RS256"), headers=header)


async def test_verification_refuses_anything_but_our_exact_tokens(keys: SigningKeyStore) -> None:
    good = _issue(keys)
    kid = jwt.get_unverified_header(good)["kid"]
    claims = jwt.decode(good, options={"verify_signature": False})
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(utcnow().timestamp())
    forged = [
        _forge(claims, stranger, kid=kid, typ="at+jwt"),  # not our key
        _forge({**claims, "aud": "other"}, stranger, kid=kid, typ="at+jwt"),
        _forge(claims, "secret" * 6, alg="HS256", kid=kid, typ="at+jwt"),
        good.rsplit(".", 1)[0] + ".",  # signature stripped
        jwt.encode(claims, "", algorithm="none", headers={"kid": kid, "typ": "at+jwt"}),
    ]
    for token in forged:
        with pytest.raises(InvalidAccessTokenError):
            verify_access_token(token, keys, ISSUER)
    wrong = [
        TokenIssuer("https://other.example", "auth-platform", ISSUER.ttl),
        TokenIssuer(ISSUER.issuer, "someone-else", ISSUER.ttl),
    ]
    for issuer in wrong:
        with pytest.raises(InvalidAccessTokenError):
            verify_access_token(good, keys, issuer)
    private_key = keys.signing_key(utcnow()).private_key
    expired = _forge(
        {**claims, "iat": now - 3600, "exp": now - 60}, private_key, kid=kid, typ="at+jwt"
    )
    with pytest.raises(InvalidAccessTokenError):
        verify_access_token(expired, keys, ISSUER)


async def test_a_jwt_of_another_type_is_refused(keys: SigningKeyStore) -> None:
    good = _issue(keys)
    header = jwt.get_unverified_header(good)
    claims = jwt.decode(good, options={"verify_signature": False})
    # Re-signing needs the private key: take it from the store, as an attacker could not.
    private_key = keys.signing_key(utcnow()).private_key
    id_token = _forge(claims, private_key, kid=header["kid"], typ="JWT")
    with pytest.raises(InvalidAccessTokenError):
        verify_access_token(id_token, keys, ISSUER)
    missing_jti = _forge(
        {k: v for k, v in claims.items() if k != "jti"},
        private_key,
        kid=header["kid"],
        typ="at+jwt",
    )
    with pytest.raises(InvalidAccessTokenError):
        verify_access_token(missing_jti, keys, ISSUER)


async def test_a_services_token_has_no_session_and_its_client_as_subject(
    keys: SigningKeyStore,
) -> None:
    token = _issue(keys, subject="reports", client_id="reports", session_id=None, roles=[])
    claims = access_token_claims(token, keys, ISSUER.issuer, audience=None)
    assert claims["sub"] == claims["client_id"] == "reports"
    assert "sid" not in claims
    assert claims["roles"] == []
    # Auth's own bearer endpoints take a person's token only.
    with pytest.raises(InvalidAccessTokenError):
        verify_access_token(token, keys, ISSUER)


async def test_audience_and_lifetime_may_be_chosen_but_never_a_longer_life(
    keys: SigningKeyStore,
) -> None:
    shorter = _issue(keys, audience="https://reports.example", ttl=timedelta(minutes=5))
    claims = jwt.decode(shorter, options={"verify_signature": False})
    assert claims["aud"] == "https://reports.example"
    assert claims["exp"] - claims["iat"] == 300
    longer = jwt.decode(_issue(keys, ttl=timedelta(hours=2)), options={"verify_signature": False})
    assert longer["exp"] - longer["iat"] == ISSUER.ttl.total_seconds()
    # Introspection's check takes any audience; a named one must match.
    assert access_token_claims(shorter, keys, ISSUER.issuer, audience=None)["aud"]
    with pytest.raises(InvalidAccessTokenError):
        access_token_claims(shorter, keys, ISSUER.issuer, audience="auth-platform")
