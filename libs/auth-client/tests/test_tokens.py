"""verify_access_token and TokenVerifier: every forged or malformed token is refused."""

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from auth_client import DenyList, Principal, TokenPolicy, VerifiedTokenCache
from auth_client.tokens import (
    MAX_LEEWAY_SECONDS,
    InvalidAccessTokenError,
    TokenVerifier,
    verify_access_token,
)
from testsupport.tokens import (
    POLICY,
    SigningKey,
    StaticKeys,
    b64,
    claims_for,
    mint,
    segments,
    service_claims_for,
    sign,
)

pytestmark = pytest.mark.anyio


async def rejected(token: str, keys: StaticKeys) -> str:
    with pytest.raises(InvalidAccessTokenError) as caught:
        await verify_access_token(token, keys, POLICY)
    return str(caught.value)


def forge(header: dict[str, Any], claims: dict[str, Any], signature: str = "c2ln") -> str:
    return f"{b64(header)}.{b64(claims)}.{signature}"


async def test_a_persons_token_as_the_auth_service_issues_it_is_accepted(
    signing_key: SigningKey,
) -> None:
    subject = uuid.uuid4()
    claims = claims_for(subject, roles=["user", "admin"], scope="openid profile")
    principal = await verify_access_token(
        mint(signing_key, claims), StaticKeys(signing_key), POLICY
    )
    assert principal == Principal(
        subject=str(subject),
        client_id="public",
        scopes=frozenset({"openid", "profile"}),
        roles=frozenset({"user", "admin"}),
        session_id=claims["sid"],
        expires_at=claims["exp"],
        issued_at=claims["iat"],
        token_id=claims["jti"],
        key_id="key-1",
    )
    assert principal.claims == claims
    assert principal.is_person
    assert not principal.is_service


async def test_a_services_own_token_is_accepted_and_known_for_one(
    signing_key: SigningKey,
) -> None:
    # client_credentials: `sub` is the client id (not a UUID), no session, no roles.
    token = mint(signing_key, service_claims_for("reports", scope="users:read"))
    principal = await verify_access_token(token, StaticKeys(signing_key), POLICY)
    assert principal.subject == principal.client_id == "reports"
    assert principal.session_id is None
    assert principal.roles == frozenset()
    assert principal.scopes == frozenset({"users:read"})
    assert principal.is_service
    assert not principal.is_person


async def test_a_token_of_another_client_for_a_person_is_a_persons_token(
    signing_key: SigningKey,
) -> None:
    # `sub` differs from `client_id`: a person signed in through some client.
    token = mint(signing_key, claims_for(client_id="mobile-app"))
    assert (await verify_access_token(token, StaticKeys(signing_key), POLICY)).is_person


async def test_the_claims_of_a_principal_cannot_be_changed(signing_key: SigningKey) -> None:
    principal = await verify_access_token(mint(signing_key), StaticKeys(signing_key), POLICY)
    with pytest.raises(TypeError):
        principal.claims["sub"] = "someone-else"  # type: ignore[index]
    assert "claims" not in repr(principal)


async def test_an_id_token_is_never_taken_for_an_access_token(signing_key: SigningKey) -> None:
    # OpenID Connect ID tokens are signed by the same keys, with `typ` JWT and `aud` the client.
    id_token = mint(
        signing_key,
        claims_for(aud=POLICY.audience, nonce="n-0S6_WzA2Mj", auth_time=1),
        headers={"typ": "JWT"},
    )
    assert await rejected(id_token, StaticKeys(signing_key)) == "not an access token (typ)"


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt"])
async def test_both_spellings_of_the_access_token_type_are_accepted(
    signing_key: SigningKey, typ: str
) -> None:
    token = mint(signing_key, headers={"typ": typ})
    assert (await verify_access_token(token, StaticKeys(signing_key), POLICY)).key_id == "key-1"


async def test_a_fractional_numeric_date_is_accepted(signing_key: SigningKey) -> None:
    token = mint(signing_key, exp=time.time() + 300.5)
    access = await verify_access_token(token, StaticKeys(signing_key), POLICY)
    assert isinstance(access.expires_at, int)


async def test_scope_and_roles_may_be_absent(signing_key: SigningKey) -> None:
    token = mint(signing_key, without=("scope", "roles"))
    access = await verify_access_token(token, StaticKeys(signing_key), POLICY)
    assert access.roles == frozenset()
    assert access.scopes == frozenset()


async def test_an_audience_list_naming_ours_is_accepted(signing_key: SigningKey) -> None:
    token = mint(signing_key, aud=["other-api", POLICY.audience])
    assert await verify_access_token(token, StaticKeys(signing_key), POLICY)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", "c2ln"])
async def test_alg_none_in_any_case_is_refused(
    signing_key: SigningKey, alg: str, signature: str
) -> None:
    token = forge({"alg": alg, "typ": "at+jwt", "kid": "key-1"}, claims_for(), signature)
    keys = StaticKeys(signing_key)
    assert await rejected(token, keys) in ("not a compact JWS", "algorithm not allowed")
    assert keys.lookups == []


async def test_hs256_keyed_with_the_public_key_is_refused(signing_key: SigningKey) -> None:
    # The classic confusion: HMAC with the RSA public key (which anyone can read) as secret.
    public_pem = signing_key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'at+jwt', 'kid': 'key-1'})}.{b64(claims_for())}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert await rejected(f"{signing_input}.{b64(mac)}", StaticKeys(signing_key)) == (
        "algorithm not allowed"
    )


@pytest.mark.parametrize("alg", ["RS512", "PS256", "ES256", "rs256"])
async def test_any_algorithm_but_rs256_is_refused(signing_key: SigningKey, alg: str) -> None:
    _header, payload, signature = segments(mint(signing_key))
    token = f"{b64({'alg': alg, 'typ': 'at+jwt', 'kid': 'key-1'})}.{payload}.{signature}"
    assert await rejected(token, StaticKeys(signing_key)) == "algorithm not allowed"


async def test_a_payload_swapped_under_a_valid_signature_is_refused(
    signing_key: SigningKey,
) -> None:
    header, _payload, signature = segments(mint(signing_key))
    admin_claims = claims_for(roles=["admin"])
    token = f"{header}.{b64(admin_claims)}.{signature}"
    assert "InvalidSignatureError" in await rejected(token, StaticKeys(signing_key))


@pytest.mark.parametrize("cut", ["stripped", "dropped", "truncated"])
async def test_a_missing_or_damaged_signature_is_refused(signing_key: SigningKey, cut: str) -> None:
    header, payload, signature = segments(mint(signing_key))
    token = {
        "stripped": f"{header}.{payload}.",
        "dropped": f"{header}.{payload}",
        "truncated": f"{header}.{payload}.{signature[:-4]}",
    }[cut]
    await rejected(token, StaticKeys(signing_key))


async def test_a_token_signed_by_another_key_under_our_kid_is_refused(
    signing_key: SigningKey, other_key: SigningKey
) -> None:
    impostor = SigningKey("key-1", other_key.private_key)
    assert "InvalidSignatureError" in await rejected(mint(impostor), StaticKeys(signing_key))


async def test_an_unknown_kid_is_refused(signing_key: SigningKey, other_key: SigningKey) -> None:
    keys = StaticKeys(signing_key)
    assert await rejected(mint(other_key), keys) == "unknown kid"
    assert keys.lookups == ["key-2"]


@pytest.mark.parametrize("kid", ["", "k" * 129, 7, None, ["key-1"], {"kid": "key-1"}])
async def test_an_absurd_kid_is_refused_without_a_key_lookup(
    signing_key: SigningKey, kid: object
) -> None:
    _header, payload, signature = segments(mint(signing_key))
    token = f"{b64({'alg': 'RS256', 'typ': 'at+jwt', 'kid': kid})}.{payload}.{signature}"
    keys = StaticKeys(signing_key)
    assert await rejected(token, keys) in ("missing or malformed kid", "unreadable header")
    assert keys.lookups == []


async def test_a_missing_kid_is_refused(signing_key: SigningKey) -> None:
    _header, payload, signature = segments(mint(signing_key))
    token = f"{b64({'alg': 'RS256', 'typ': 'at+jwt'})}.{payload}.{signature}"
    assert await rejected(token, StaticKeys(signing_key)) == "missing or malformed kid"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("jku", "https://attacker.example/jwks.json"),
        ("x5u", "https://attacker.example/cert.pem"),
        ("jwk", {"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
        ("x5c", ["MIIB"]),
        ("crit", ["exp"]),
        ("b64", False),
    ],
)
async def test_key_pointing_and_critical_headers_are_refused_not_followed(
    signing_key: SigningKey, name: str, value: object
) -> None:
    # Signed with our own key, so nothing but the header parameter is wrong.
    token = mint(signing_key, headers={name: value})
    keys = StaticKeys(signing_key)
    # PyJWT itself already refuses some of them while reading the header; either way, refused.
    assert await rejected(token, keys) in (f"refused header parameter {name}", "unreadable header")
    assert keys.lookups == []


async def test_a_refresh_token_sent_as_an_access_token_is_refused(
    signing_key: SigningKey,
) -> None:
    refresh_token = secrets.token_urlsafe(48)  # opaque, as the auth service issues them
    assert await rejected(refresh_token, StaticKeys(signing_key)) == "not a compact JWS"


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+jwt2", "", None, 1, "refresh+jwt"])
async def test_a_token_of_another_type_is_refused(signing_key: SigningKey, typ: object) -> None:
    token = mint(signing_key, headers={"typ": typ})
    assert await rejected(token, StaticKeys(signing_key)) == "not an access token (typ)"


async def test_a_token_without_typ_is_refused(signing_key: SigningKey) -> None:
    _header, payload, signature = segments(mint(signing_key))
    token = f"{b64({'alg': 'RS256', 'kid': 'key-1'})}.{payload}.{signature}"
    assert await rejected(token, StaticKeys(signing_key)) == "not an access token (typ)"


async def test_an_expired_token_is_refused(signing_key: SigningKey) -> None:
    now = int(time.time())
    token = mint(signing_key, exp=now - POLICY.leeway_seconds - 1, iat=now - 600)
    assert "ExpiredSignatureError" in await rejected(token, StaticKeys(signing_key))


async def test_a_token_expired_within_the_leeway_is_accepted(signing_key: SigningKey) -> None:
    now = int(time.time())
    token = mint(signing_key, exp=now - POLICY.leeway_seconds // 2, iat=now - 600)
    assert await verify_access_token(token, StaticKeys(signing_key), POLICY)


@pytest.mark.parametrize("claim", ["nbf", "iat"])
async def test_a_token_not_yet_valid_is_refused(signing_key: SigningKey, claim: str) -> None:
    token = mint(
        signing_key, {**claims_for(), claim: int(time.time()) + POLICY.leeway_seconds + 60}
    )
    assert "ImmatureSignatureError" in await rejected(token, StaticKeys(signing_key))


async def test_a_past_nbf_is_honoured_and_accepted(signing_key: SigningKey) -> None:
    token = mint(signing_key, nbf=int(time.time()) - 5)
    assert await verify_access_token(token, StaticKeys(signing_key), POLICY)


@pytest.mark.parametrize(
    ("claim", "value", "error"),
    [
        ("iss", "http://127.0.0.1:9999", "InvalidIssuerError"),
        ("iss", ["http://127.0.0.1:18000"], "InvalidIssuerError"),
        ("aud", "another-api", "InvalidAudienceError"),
        ("aud", ["another-api"], "InvalidAudienceError"),
    ],
)
async def test_a_foreign_issuer_or_audience_is_refused(
    signing_key: SigningKey, claim: str, value: object, error: str
) -> None:
    assert error in await rejected(
        mint(signing_key, {**claims_for(), claim: value}), StaticKeys(signing_key)
    )


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "sub", "jti", "client_id"])
@pytest.mark.parametrize("how", ["absent", "null"])
async def test_every_required_claim_must_be_present(
    signing_key: SigningKey, claim: str, how: str
) -> None:
    token = (
        mint(signing_key, without=(claim,))
        if how == "absent"
        else mint(signing_key, {**claims_for(), claim: None})
    )
    assert "MissingRequiredClaimError" in await rejected(token, StaticKeys(signing_key))


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("exp", str(int(time.time()) + 300)),
        ("exp", float("inf")),
        ("exp", True),
        ("iat", str(int(time.time()))),
        ("nbf", str(int(time.time()) - 5)),
        ("sub", 42),
        ("sub", ""),
        ("sub", "x" * 256),
        ("sub", ["a"]),
        ("client_id", 7),
        ("client_id", ""),
        ("sid", 7),
        ("sid", ""),
        ("jti", 7),
        ("jti", ""),
        ("scope", ["openid"]),
        ("roles", "admin"),
        ("roles", [1, 2]),
    ],
)
async def test_claims_of_the_wrong_type_are_refused(
    signing_key: SigningKey, claim: str, value: object
) -> None:
    await rejected(mint(signing_key, {**claims_for(), claim: value}), StaticKeys(signing_key))


@pytest.mark.parametrize(
    "token",
    [
        f"{b64('not json')}.{b64(claims_for())}.c2ln",
        f"{b64('[1, 2]')}.{b64(claims_for())}.c2ln",
        b64(b"\xff\xfe") + f".{b64(claims_for())}.c2ln",
        "a.b.c",
        "....",
        "a b.c.d",
        "ey.ey.ey.ey",
        "éé.éé.éé",
    ],
)
async def test_unreadable_segments_are_refused(signing_key: SigningKey, token: str) -> None:
    await rejected(token, StaticKeys(signing_key))


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b'"string"', b"\xff"])
async def test_a_signed_payload_that_is_not_a_json_object_is_refused(
    signing_key: SigningKey, payload: bytes
) -> None:
    header = b64({"alg": "RS256", "kid": "key-1", "typ": "at+jwt"})
    token = sign(signing_key, header, b64(payload))
    assert "DecodeError" in await rejected(token, StaticKeys(signing_key))


async def test_an_oversized_token_is_refused_before_parsing(signing_key: SigningKey) -> None:
    token = mint(signing_key, padding="x" * POLICY.max_bytes)
    keys = StaticKeys(signing_key)
    assert await rejected(token, keys) == "token too large"
    assert keys.lookups == []


async def test_every_rejection_reads_the_same_to_the_caller(signing_key: SigningKey) -> None:
    # One exception type whose message is for the log: callers cannot tell causes apart.
    tokens = [mint(signing_key, aud="x"), "garbage", mint(signing_key, headers={"jku": "x"})]
    errors = set()
    for token in tokens:
        with pytest.raises(InvalidAccessTokenError) as caught:
            await verify_access_token(token, StaticKeys(signing_key), POLICY)
        errors.add(type(caught.value))
    assert errors == {InvalidAccessTokenError}


def verifier_for(
    keys: StaticKeys, clock: list[float] | None = None, deny_list: DenyList | None = None
) -> TokenVerifier:
    now = clock if clock is not None else [time.time()]
    cache = VerifiedTokenCache(100, clock=lambda: now[0])
    return TokenVerifier(keys, POLICY, cache=cache, deny_list=deny_list)


async def test_a_verified_token_is_served_from_the_cache(signing_key: SigningKey) -> None:
    keys = StaticKeys(signing_key)
    verifier = verifier_for(keys)
    token = mint(signing_key)
    first = await verifier.verify(token)
    assert await verifier.verify(token) == first
    assert keys.lookups == ["key-1"]  # the second call never reached verification


async def test_failures_are_never_cached_as_successes(signing_key: SigningKey) -> None:
    keys = StaticKeys(signing_key)
    verifier = verifier_for(keys)
    token = mint(signing_key, aud="someone-else")
    for _ in range(2):
        with pytest.raises(InvalidAccessTokenError):
            await verifier.verify(token)
    assert keys.lookups == ["key-1", "key-1"]


async def test_a_cached_token_dies_with_its_key(signing_key: SigningKey) -> None:
    keys = StaticKeys(signing_key)
    verifier = verifier_for(keys)
    token = mint(signing_key)
    await verifier.verify(token)
    del keys.keys["key-1"]  # the key left the published set
    with pytest.raises(InvalidAccessTokenError):
        await verifier.verify(token)


async def test_a_cached_token_is_not_served_past_its_exp(signing_key: SigningKey) -> None:
    keys = StaticKeys(signing_key)
    clock = [time.time()]
    verifier = verifier_for(keys, clock)
    claims = claims_for()
    token = mint(signing_key, claims)
    await verifier.verify(token)
    clock[0] = claims["exp"] + 1
    await verifier.verify(token)  # verified again (still within PyJWT's leeway), not cached
    assert keys.lookups == ["key-1", "key-1"]


async def test_the_cache_refuses_an_oversized_token_before_hashing(
    signing_key: SigningKey,
) -> None:
    keys = StaticKeys(signing_key)
    verifier = TokenVerifier(keys, replace(POLICY, max_bytes=1024), cache=VerifiedTokenCache(10))
    with pytest.raises(InvalidAccessTokenError, match="too large"):
        await verifier.verify("a" * 2000)


async def test_the_verifier_keeps_an_empty_deny_list_and_a_cache_by_default(
    signing_key: SigningKey,
) -> None:
    verifier = TokenVerifier(StaticKeys(signing_key), POLICY)
    assert len(verifier.deny_list) == 0
    await verifier.verify(mint(signing_key))
    assert len(verifier.cache) == 1


async def test_a_denied_session_is_refused_though_its_signature_checks(
    signing_key: SigningKey,
) -> None:
    keys = StaticKeys(signing_key)
    verifier = verifier_for(keys)
    claims = claims_for()
    token, other_session = mint(signing_key, claims), mint(signing_key)
    await verifier.verify(token)  # accepted, and now cached

    verifier.deny_list.deny_session(claims["sid"], until=time.time() + 900)
    with pytest.raises(InvalidAccessTokenError, match="denied"):
        await verifier.verify(token)  # the cached success does not bypass the list
    assert await verifier.verify(other_session)


async def test_a_denied_subject_is_refused_for_tokens_issued_before_the_denial(
    signing_key: SigningKey,
) -> None:
    verifier = verifier_for(StaticKeys(signing_key))
    subject, now = uuid.uuid4(), int(time.time())
    before = mint(signing_key, claims_for(subject, iat=now - 60))
    after = mint(signing_key, claims_for(subject, iat=now))
    verifier.deny_list.deny_subject(str(subject), until=now + 900, issued_before=now - 30)
    with pytest.raises(InvalidAccessTokenError, match="denied"):
        await verifier.verify(before)
    assert (await verifier.verify(after)).subject == str(subject)


async def test_the_deny_list_is_consulted_only_after_the_signature_check(
    signing_key: SigningKey, other_key: SigningKey
) -> None:
    # A forged token naming a denied session is refused as forged: the list reveals nothing.
    verifier = verifier_for(StaticKeys(signing_key))
    claims = claims_for()
    verifier.deny_list.deny_session(claims["sid"], until=time.time() + 900)
    impostor = SigningKey("key-1", other_key.private_key)
    with pytest.raises(InvalidAccessTokenError, match="InvalidSignatureError"):
        await verifier.verify(mint(impostor, claims))


@pytest.mark.parametrize(
    "overrides",
    [
        {"leeway_seconds": MAX_LEEWAY_SECONDS + 1},
        {"leeway_seconds": -1},
        {"max_bytes": 0},
        {"issuer": ""},
        {"audience": ""},
    ],
)
def test_a_policy_out_of_bounds_is_refused(overrides: dict[str, Any]) -> None:
    settings: dict[str, Any] = {"issuer": "http://issuer.test", "audience": "api", **overrides}
    with pytest.raises(ValueError):  # noqa: PT011 - each message names its own bound
        TokenPolicy(**settings)
