"""Client authentication: each method, what each refuses, and the throttle before it."""

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import client_auth, clients, registration
from auth_service.client_auth import (
    ClientAuthenticator,
    PresentedCredentials,
    PublicClientCache,
)
from auth_service.clients import ClientSecretHasher, RegisteredClient
from auth_service.clock import utcnow
from auth_service.models import AuditEvent, UsedClientAssertion
from auth_service.oauth import OAuthError
from auth_service.throttling import ThrottlePolicy
from service_kit.db import Database
from testsupport.client_keys import assertion, assertion_form, ec_jwk, rsa_jwk

pytestmark = pytest.mark.anyio

ISSUER = "https://id.example"
TOKEN_ENDPOINT = f"{ISSUER}/auth/token"
ADDRESS = "203.0.113.9"
AUTHENTICATOR = ClientAuthenticator(
    hasher=ClientSecretHasher("test-kek"),
    # A long first wait: the test must meet it whatever the machine's speed.
    throttle=ThrottlePolicy(
        free_per_pair=3,
        free_per_address=20,
        free_per_login=10,
        base_seconds=600,
        max_seconds=900,
        window_seconds=900,
    ),
    issuer=ISSUER,
    default_client_id="public",
)
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PSS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
STRANGER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
JWKS = {
    "keys": [
        rsa_jwk(RSA_KEY, "rsa-1", alg="RS256"),
        rsa_jwk(PSS_KEY, "pss-1", alg="PS256"),
        ec_jwk(EC_KEY, "ec-1"),
    ]
}


@pytest.fixture
async def secret(db: AsyncSession) -> str:
    """A registry of four clients: `public` (the default), `app` (public), `service` with
    a secret (returned), and `keyed` with a key set."""

    async def add(client_id: str, client_type: str, **fields: Any) -> str | None:
        checked = registration.registration(
            client_id,
            client_type,
            grant_types=None,
            scopes=None,
            existing_scopes=frozenset({"profile"}),
            default_scopes=frozenset({"profile"}),
            max_access_token_ttl_seconds=900,
            **fields,
        )
        created = await clients.create(
            db, checked, AUTHENTICATOR.hasher, actor="test", now=utcnow()
        )
        return created.secret

    await add("public", "public")
    await add("app", "public")
    await add("keyed", "confidential", jwks=JWKS)
    service_secret = await add("service", "confidential")
    assert service_secret is not None
    return service_secret


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


async def _authenticate(
    db: AsyncSession,
    *,
    authorization: str | None = None,
    form: dict[str, str] | None = None,
    address: str = ADDRESS,
    endpoint: str = TOKEN_ENDPOINT,
    confidential_only: bool = False,
    authenticator: ClientAuthenticator = AUTHENTICATOR,
) -> RegisteredClient:
    credentials = client_auth.presented(authorization, form or {})
    if confidential_only:
        client, _ = await client_auth.authenticate_confidential(
            db, authenticator, credentials, endpoint=endpoint, client_address=address, now=utcnow()
        )
        return client
    return await client_auth.authenticate(
        db, authenticator, credentials, endpoint=endpoint, client_address=address, now=utcnow()
    )


async def _refused(db: AsyncSession, **request: Any) -> OAuthError:
    with pytest.raises(OAuthError) as refused:
        await _authenticate(db, **request)
    return refused.value


async def _keyed(db: AsyncSession, token: str, **request: Any) -> RegisteredClient:
    return await _authenticate(db, form=assertion_form(token), **request)


async def test_client_secret_basic_takes_the_right_secret_only(
    db: AsyncSession, secret: str
) -> None:
    client = await _authenticate(db, authorization=_basic("service", secret))
    assert (client.id, client.confidential) == ("service", True)
    wrong = await _refused(db, authorization=_basic("service", secret[:-1] + "x"))
    assert (wrong.error, wrong.status) == ("invalid_client", 401)
    assert wrong.headers["WWW-Authenticate"].startswith('Basic realm="auth"')


async def test_client_secret_post_takes_the_right_secret_only(
    db: AsyncSession, secret: str
) -> None:
    client = await _authenticate(db, form={"client_id": "service", "client_secret": secret})
    assert client.id == "service"
    wrong = await _refused(db, form={"client_id": "service", "client_secret": "nope"})
    assert (wrong.error, wrong.status) == ("invalid_client", 401)
    assert "WWW-Authenticate" not in wrong.headers  # Basic was not used


@pytest.mark.parametrize(
    "authorization",
    [
        _basic("", "a-secret"),  # a secret of no client
        "Basic not-base64!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Bearer a-token",  # the token endpoint speaks Basic only
    ],
)
def test_unreadable_authorization_headers_are_an_invalid_client(authorization: str) -> None:
    with pytest.raises(OAuthError) as refused:
        client_auth.presented(authorization, {})
    assert (refused.value.error, refused.value.status) == ("invalid_client", 401)
    assert refused.value.headers["WWW-Authenticate"].startswith("Basic ")


def test_basic_credentials_are_form_decoded_as_rfc_6749_says() -> None:
    credentials = client_auth.presented(_basic("my%20client", "a%2Bb+c"), {})
    assert credentials == PresentedCredentials(
        client_id="my client",
        method="client_secret_basic",
        secret="a+b c",
        via_basic=True,
    )


async def test_an_unknown_client_and_a_wrong_secret_answer_alike(
    db: AsyncSession, secret: str
) -> None:
    unknown = await _refused(db, authorization=_basic("nobody", secret))
    wrong = await _refused(db, authorization=_basic("service", "wrong"))
    assert (unknown.status, unknown.description) == (wrong.status, wrong.description)


@pytest.mark.parametrize(
    ("key", "algorithm", "kid"),
    [(RSA_KEY, "RS256", "rsa-1"), (PSS_KEY, "PS256", "pss-1"), (EC_KEY, "ES256", "ec-1")],
)
async def test_private_key_jwt_with_each_pinned_algorithm(
    db: AsyncSession, secret: str, key: Any, algorithm: str, kid: str
) -> None:
    token = assertion("keyed", key, TOKEN_ENDPOINT, kid=kid, algorithm=algorithm)
    assert (await _keyed(db, token)).id == "keyed"
    # Without a kid, the keys of the set that fit the algorithm are tried.
    no_kid = assertion("keyed", key, TOKEN_ENDPOINT, algorithm=algorithm)
    assert (await _keyed(db, no_kid)).id == "keyed"


async def test_an_assertion_names_the_issuer_the_token_endpoint_or_the_endpoint_called(
    db: AsyncSession, secret: str
) -> None:
    introspection = f"{ISSUER}/auth/introspect"
    for audience, endpoint in (
        (ISSUER, TOKEN_ENDPOINT),
        (TOKEN_ENDPOINT, introspection),
        (introspection, introspection),
        (["https://elsewhere.example", TOKEN_ENDPOINT], TOKEN_ENDPOINT),
    ):
        token = assertion("keyed", RSA_KEY, audience, kid="rsa-1")
        assert (await _keyed(db, token, endpoint=endpoint)).id == "keyed"
    for audience in (introspection, "https://elsewhere.example", f"{ISSUER}/auth/tokens"):
        token = assertion("keyed", RSA_KEY, audience, kid="rsa-1")
        refused = await _refused(db, form=assertion_form(token))
        assert (refused.error, refused.status) == ("invalid_client", 401)


async def test_an_expired_assertion_is_refused(db: AsyncSession, secret: str) -> None:
    token = assertion("keyed", RSA_KEY, TOKEN_ENDPOINT, kid="rsa-1", lifetime=-60)
    assert (await _refused(db, form=assertion_form(token))).error == "invalid_client"


async def test_an_assertion_may_live_an_hour_and_no_longer(db: AsyncSession, secret: str) -> None:
    # Authlib's default assertion lifetime is 3600 s: a stock client must get through.
    hour = assertion("keyed", RSA_KEY, TOKEN_ENDPOINT, kid="rsa-1", lifetime=3600)
    assert (await _keyed(db, hour)).id == "keyed"
    longer = assertion("keyed", RSA_KEY, TOKEN_ENDPOINT, kid="rsa-1", lifetime=3600 + 120)
    assert (await _refused(db, form=assertion_form(longer))).error == "invalid_client"


async def test_a_jti_is_accepted_once(db: AsyncSession, secret: str) -> None:
    token = assertion("keyed", RSA_KEY, TOKEN_ENDPOINT, kid="rsa-1", lifetime=600)
    await _keyed(db, token)
    assert (await _refused(db, form=assertion_form(token))).error == "invalid_client"
    # Remembered until the assertion has expired (and its leeway), for the purge.
    (used,) = await db.scalars(select(UsedClientAssertion))
    assert used.client_id == "keyed"
    assert timedelta(seconds=600) < used.expires_at - utcnow() <= timedelta(seconds=611)
    # Another assertion with the same jti but another signature is the same jti.
    again = assertion("keyed", EC_KEY, TOKEN_ENDPOINT, kid="ec-1", algorithm="ES256", jti=used.jti)
    assert (await _refused(db, form=assertion_form(again))).error == "invalid_client"


async def test_one_assertion_sent_to_several_replicas_at_once_is_accepted_once(
    database_url: str, secret: str
) -> None:
    token = assertion("keyed", RSA_KEY, TOKEN_ENDPOINT, kid="rsa-1")
    replicas = [Database(database_url) for _ in range(4)]

    async def attempt(replica: Database) -> bool:
        async with replica.db_session() as db:
            try:
                await _keyed(db, token)
            except OAuthError:
                return False
            return True

    try:
        results = await asyncio.gather(*(attempt(replica) for replica in replicas))
    finally:
        for replica in replicas:
            await replica.dispose()
    assert sorted(results) == [False, False, False, True]


async def test_an_unknown_key_is_refused(db: AsyncSession, secret: str) -> None:
    for token in (
        assertion("keyed", STRANGER_KEY, TOKEN_ENDPOINT, kid="stranger"),  # kid not in the set
        assertion("keyed", STRANGER_KEY, TOKEN_ENDPOINT, kid="rsa-1"),  # our kid, their key
        assertion("keyed", STRANGER_KEY, TOKEN_ENDPOINT),  # no kid, no key of ours fits
    ):
        assert (await _refused(db, form=assertion_form(token))).error == "invalid_client"


async def test_other_algorithms_are_refused(db: AsyncSession, secret: str) -> None:
    public_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = [
        assertion("keyed", RSA_KEY, TOKEN_ENDPOINT, kid="rsa-1", algorithm="RS384"),
        assertion("keyed", RSA_KEY, TOKEN_ENDPOINT, kid="rsa-1", algorithm="PS256"),  # RS256 key
        assertion("keyed", "", TOKEN_ENDPOINT, kid="rsa-1", algorithm="none"),
    ]

    # HMAC keyed with the public key (the classic confusion): PyJWT refuses to make one.
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}).encode())
    claims = assertion("keyed", RSA_KEY, TOKEN_ENDPOINT, kid="rsa-1").split(".")[1]
    mac = hmac.new(public_pem, f"{header}.{claims}".encode(), hashlib.sha256).digest()
    forged.append(f"{header}.{claims}.{b64(mac)}")
    for token in forged:
        assert (await _refused(db, form=assertion_form(token))).error == "invalid_client"


async def test_an_assertion_is_by_and_about_the_client_with_every_claim(
    db: AsyncSession, secret: str
) -> None:
    for claims in (
        {"iss": "service"},
        {"sub": "service"},
        {"jti": None},
        {"exp": None},
        {"aud": None},
    ):
        token = assertion("keyed", RSA_KEY, TOKEN_ENDPOINT, kid="rsa-1", **claims)
        refused = await _refused(db, form=assertion_form(token, client_id="keyed"))
        assert refused.error == "invalid_client", claims
    # The form's client_id, when sent, must be the assertion's client.
    token = assertion("keyed", RSA_KEY, TOKEN_ENDPOINT, kid="rsa-1")
    refused = await _refused(db, form=assertion_form(token, client_id="service"))
    assert refused.error == "invalid_client"
    # A secret client cannot use an assertion, nor a keyed client a secret.
    keyed_secret = await _refused(db, authorization=_basic("keyed", secret))
    assert keyed_secret.error == "invalid_client"


@pytest.mark.parametrize(
    ("authorization", "form"),
    [
        (True, {"client_id": "service", "client_secret": "x"}),
        (False, {"client_id": "service", "client_secret": "x", "client_assertion": "a.b.c"}),
        (True, {"client_assertion": "a.b.c"}),
    ],
)
async def test_two_methods_at_once_are_an_invalid_request(
    db: AsyncSession, secret: str, authorization: bool, form: dict[str, str]
) -> None:
    form = {**form}
    if "client_assertion" in form:
        form["client_assertion_type"] = client_auth.ASSERTION_TYPE
    refused = await _refused(
        db, authorization=_basic("service", secret) if authorization else None, form=form
    )
    assert (refused.error, refused.status) == ("invalid_request", 400)


async def test_a_public_client_names_itself_and_proves_nothing(
    db: AsyncSession, secret: str
) -> None:
    assert (await _authenticate(db)).id == "public"  # no client named: the default one
    assert (await _authenticate(db, form={"client_id": "app"})).id == "app"
    assert (await _authenticate(db, authorization=_basic("app", ""))).id == "app"  # Swagger UI
    unknown = await _refused(db, form={"client_id": "nobody"})
    assert (unknown.error, unknown.status) == ("invalid_client", 401)
    # A confidential client must authenticate; a public one has nothing to authenticate with.
    assert (await _refused(db, form={"client_id": "service"})).error == "invalid_client"
    with_secret = await _refused(db, form={"client_id": "app", "client_secret": "x"})
    assert with_secret.error == "invalid_client"


async def test_confidential_only_endpoints_refuse_public_and_anonymous_callers(
    db: AsyncSession, secret: str
) -> None:
    for form in ({}, {"client_id": "app"}):
        refused = await _refused(db, form=form, confidential_only=True)
        assert (refused.error, refused.status) == ("invalid_client", 401)
    client = await _authenticate(
        db, authorization=_basic("service", secret), confidential_only=True
    )
    assert client.id == "service"


async def test_failures_are_throttled_before_the_secret_is_checked(
    db: AsyncSession, secret: str
) -> None:
    for _ in range(4):  # three free failures, the fourth sets a wait
        assert (await _refused(db, authorization=_basic("service", "wrong"))).status == 401
    throttled = await _refused(db, authorization=_basic("service", secret))
    assert (throttled.error, throttled.status) == ("invalid_client", 429)
    assert 1 <= int(throttled.headers["Retry-After"]) <= 600
    # Another address, and another client from this one, are not held up.
    assert (
        await _authenticate(db, authorization=_basic("service", secret), address="198.51.100.4")
    ).id == "service"
    token = assertion("keyed", RSA_KEY, TOKEN_ENDPOINT, kid="rsa-1")
    assert (await _keyed(db, token)).id == "keyed"
    failures = list(
        await db.scalars(
            select(AuditEvent).where(AuditEvent.event == "client_authentication_failed")
        )
    )
    assert len(failures) == 4
    assert {event.client_id for event in failures} == {"service"}
    assert failures[0].client_address == ADDRESS
    assert failures[0].details == {"method": "client_secret_basic", "reason": "wrong_secret"}


@pytest.mark.parametrize(
    "form",
    [
        {"client_assertion_type": client_auth.ASSERTION_TYPE},  # no assertion
        {"client_assertion": "a.b.c"},  # no type
        {"client_secret": "a-secret"},  # no client named
    ],
)
def test_half_a_client_authentication_is_an_invalid_client(form: dict[str, str]) -> None:
    with pytest.raises(OAuthError) as refused:
        client_auth.presented(None, form)
    assert (refused.value.error, refused.value.status) == ("invalid_client", 401)


def test_public_clients_are_kept_for_their_max_age_and_confidential_ones_never() -> None:
    now = [0.0]
    cache = PublicClientCache(5, clock=lambda: now[0])
    public = RegisteredClient.of(
        {
            "id": "mobile",
            "type": "public",
            "grant_types": "password refresh_token",
            "scopes": "profile",
            "audiences": [],
            "redirect_uris": [],
            "jwks": None,
            "access_token_ttl_seconds": None,
            "first_party": True,
        }
    )
    confidential = dataclasses.replace(public, id="reports", type="confidential")
    cache.put(public)
    cache.put(confidential)
    assert cache.get("mobile") == public
    assert cache.get("reports") is None
    now[0] = 5.1  # a change to the registration shows within the max age
    assert cache.get("mobile") is None
    unkept = PublicClientCache(0)
    unkept.put(public)
    assert unkept.get("mobile") is None


def _keeping(max_age_seconds: float = 60) -> ClientAuthenticator:
    """AUTHENTICATOR, keeping the secrets that checked (as `VERIFIED_CLIENT_CACHE_SECONDS`)."""
    return dataclasses.replace(
        AUTHENTICATOR, verified_clients=client_auth.verified_client_cache(max_age_seconds)
    )


def _kept(authenticator: ClientAuthenticator, secret: str) -> RegisteredClient | None:
    credentials = client_auth.presented(_basic("service", secret), {})
    return client_auth.verified_client(authenticator, credentials)


async def test_a_secret_that_checked_is_kept_and_a_failure_never_is(
    db: AsyncSession, secret: str
) -> None:
    keeping = _keeping()
    assert _kept(keeping, secret) is None
    assert (
        await _authenticate(db, authorization=_basic("service", secret), authenticator=keeping)
    ).id == "service"
    assert _kept(keeping, secret) is not None
    assert _kept(keeping, secret[:-1] + "x") is None  # only that very secret
    wrong = await _refused(db, authorization=_basic("service", "wrong"), authenticator=keeping)
    assert wrong.status == 401
    # A failure makes the process forget the client: the next success is read again.
    assert _kept(keeping, secret) is None
    assert _kept(keeping, "wrong") is None
    post = {"client_id": "service", "client_secret": secret}
    assert (await _authenticate(db, form=post, authenticator=keeping)).id == "service"
    assert _kept(keeping, secret) is not None


async def test_failures_are_throttled_even_for_a_client_whose_secret_is_kept(
    db: AsyncSession, secret: str
) -> None:
    keeping = _keeping()
    await _authenticate(db, authorization=_basic("service", secret), authenticator=keeping)
    for _ in range(4):  # three free failures, the fourth sets a wait
        refused = await _refused(
            db, authorization=_basic("service", "wrong"), authenticator=keeping
        )
        assert refused.status == 401
    throttled = await _refused(db, authorization=_basic("service", secret), authenticator=keeping)
    assert (throttled.error, throttled.status) == ("invalid_client", 429)
    assert _kept(keeping, secret) is None


async def test_an_assertion_is_never_kept(db: AsyncSession, secret: str) -> None:
    keeping = _keeping()
    token = assertion("keyed", RSA_KEY, TOKEN_ENDPOINT, kid="rsa-1")
    assert (await _keyed(db, token, authenticator=keeping)).id == "keyed"
    assert len(keeping.verified_clients) == 0
    replayed = await _refused(db, form=assertion_form(token), authenticator=keeping)
    assert replayed.error == "invalid_client"


async def test_a_rotated_out_secret_is_kept_no_longer_than_its_grace(
    db: AsyncSession, secret: str
) -> None:
    keeping = _keeping(60)
    grace = timedelta(seconds=0.5)
    rotation = await clients.rotate_secret(
        db, "service", AUTHENTICATOR.hasher, grace, actor="test", now=utcnow()
    )
    await _authenticate(db, authorization=_basic("service", secret), authenticator=keeping)
    assert _kept(keeping, secret) is not None
    await asyncio.sleep(0.6)
    assert _kept(keeping, secret) is None
    expired = await _refused(db, authorization=_basic("service", secret), authenticator=keeping)
    assert expired.status == 401
    new = await _authenticate(
        db, authorization=_basic("service", rotation.secret), authenticator=keeping
    )
    assert new.id == "service"


async def test_a_deleted_client_is_refused_once_its_entry_expires(
    db: AsyncSession, secret: str
) -> None:
    keeping = _keeping(0.3)
    await _authenticate(db, authorization=_basic("service", secret), authenticator=keeping)
    # Deleted by another process (the operator's CLI), which cannot reach this cache:
    await clients.delete_client(
        db, "service", default_client_id="public", actor="test", now=utcnow()
    )
    assert _kept(keeping, secret) is not None  # within the bound
    await asyncio.sleep(0.35)
    assert _kept(keeping, secret) is None
    gone = await _refused(db, authorization=_basic("service", secret), authenticator=keeping)
    assert gone.status == 401
