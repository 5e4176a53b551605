"""What a client registration may hold: every rule `clients create` applies."""

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from auth_service.registration import InvalidClientFieldError, registration
from testsupport.client_keys import ec_jwk, rsa_jwk

SCOPES = frozenset({"profile", "users:read"})


def _register(client_id: str = "reports", client_type: str = "confidential", **fields: Any) -> Any:
    fields.setdefault("grant_types", None)
    fields.setdefault("scopes", None)
    return registration(
        client_id,
        client_type,
        existing_scopes=SCOPES,
        default_scopes=frozenset({"profile"}),
        max_access_token_ttl_seconds=900,
        **fields,
    )


def _refused(field: str, **arguments: Any) -> str:
    with pytest.raises(InvalidClientFieldError) as refused:
        _register(**arguments)
    assert refused.value.field == field
    return str(refused.value)


def test_defaults_follow_the_clients_type() -> None:
    service = _register()
    assert service.grant_types == {"client_credentials"}
    assert service.scopes == frozenset()
    assert service.first_party
    app = _register("mobile-app", "public")
    assert app.grant_types == {"password", "refresh_token"}
    assert app.scopes == {"profile"}


@pytest.mark.parametrize(
    "client_id", ["", "-starts-with-a-dash", "has space", "has:colon", "é", "x" * 65, "a/b"]
)
def test_a_client_id_is_1_to_64_url_safe_characters(client_id: str) -> None:
    _refused("client_id", client_id=client_id)


@pytest.mark.parametrize("client_id", ["a", "reports", "Billing.Service_2~x-y", "x" * 64])
def test_url_safe_client_ids_are_accepted(client_id: str) -> None:
    assert _register(client_id).client_id == client_id


def test_the_type_is_public_or_confidential() -> None:
    _refused("type", client_type="private")


@pytest.mark.parametrize(
    ("client_type", "grant_types", "rule"),
    [
        ("confidential", ["implicit"], "Unknown grant type"),
        ("confidential", ["device_code"], "Unknown grant type"),
        ("confidential", [], "at least one"),
        ("public", ["client_credentials"], "confidential clients only"),
        ("public", ["refresh_token"], "needs authorization_code or password"),
    ],
)
def test_grant_types_are_known_and_fit_the_client(
    client_type: str, grant_types: list[str], rule: str
) -> None:
    assert rule in _refused("grant_types", client_type=client_type, grant_types=grant_types)


def test_the_authorization_code_grant_needs_a_redirect_uri() -> None:
    refused = _refused("redirect_uris", client_type="public", grant_types=["authorization_code"])
    assert "needs at least one redirect URI" in refused
    registered = _register(
        client_type="public",
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=["https://app.example/callback"],
    )
    assert registered.grant_types == {"authorization_code", "refresh_token"}


def test_scopes_must_exist() -> None:
    assert "admin" in _refused("scopes", scopes=["users:read", "admin"])
    assert _register(scopes=["users:read"]).scopes == {"users:read"}


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/callback",
        "https://app.example:8443/cb?x=1",
        "http://127.0.0.1:5000/cb",
        "http://[::1]/cb",
        "http://localhost:3000/cb",
    ],
)
def test_redirect_uris_are_kept_exactly(uri: str) -> None:
    assert _register(redirect_uris=[uri]).redirect_uris == (uri,)


@pytest.mark.parametrize(
    "uri",
    [
        "/relative/callback",
        "http://app.example/cb",  # http beyond loopback
        "https://app.example/cb#fragment",
        "https://user:pass@app.example/cb",
        "javascript:alert(1)",
        "https://app.example/c b",
        "https://app.example:99999/cb",
        "https://" + "a" * 2000 + ".example/",
    ],
)
def test_bad_redirect_uris_are_refused(uri: str) -> None:
    _refused("redirect_uris", redirect_uris=[uri])


def test_audiences_have_no_spaces() -> None:
    assert _register(audiences=["https://reports.example", "billing"]).audiences == (
        "https://reports.example",
        "billing",
    )
    _refused("audiences", audiences=["two words"])


def test_a_lifetime_override_may_only_shorten() -> None:
    assert _register(access_token_ttl_seconds=300).access_token_ttl_seconds == 300
    for seconds in (30, 901):
        _refused("access_token_ttl", access_token_ttl_seconds=seconds)


def test_a_key_set_keeps_public_signing_keys_of_the_pinned_kinds() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks = {"keys": [rsa_jwk(rsa_key, "r1", alg="PS256"), ec_jwk(ec_key, "e1")]}
    checked = _register(jwks=jwks).jwks
    assert checked is not None
    assert [key["kid"] for key in checked["keys"]] == ["r1", "e1"]
    assert set(checked["keys"][1]) <= {"kty", "kid", "use", "alg", "crv", "x", "y"}


@pytest.mark.parametrize(
    ("jwks", "rule"),
    [
        ({"keys": []}, "1-10 keys"),
        ([{"kty": "RSA"}], "1-10 keys"),
        ({"keys": ["not an object"]}, "not a JSON object"),
        ({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, "private key material"),
        ({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AA"}]}, "kty must be RSA or EC"),
        ({"keys": [{"kty": "RSA", "n": "!!", "e": "AQAB"}]}, "not a usable key"),
    ],
)
def test_a_bad_key_set_is_refused(jwks: Any, rule: str) -> None:
    assert rule in _refused("jwks", jwks=jwks)


def test_private_keys_other_curves_other_algorithms_and_twin_kids_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - refused
    assert "at least 2048 bits" in _refused("jwks", jwks={"keys": [rsa_jwk(small, "s")]})
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = {**rsa_jwk(rsa_key, "r1"), "d": "c2VjcmV0"}
    assert "private key material" in _refused("jwks", jwks={"keys": [private]})
    p384 = ec_jwk(ec.generate_private_key(ec.SECP384R1()), "e1")
    assert "P-256" in _refused("jwks", jwks={"keys": [p384]})
    rs384 = rsa_jwk(rsa_key, "r1", alg="RS384")
    assert "alg must be one of RS256, PS256" in _refused("jwks", jwks={"keys": [rs384]})
    encryption = {**rsa_jwk(rsa_key, "r1"), "use": "enc"}
    assert "use must be sig" in _refused("jwks", jwks={"keys": [encryption]})
    twins = {"keys": [rsa_jwk(rsa_key, "same"), rsa_jwk(rsa_key, "same")]}
    assert "same kid" in _refused("jwks", jwks=twins)
    assert "confidential" in _refused(
        "jwks", client_type="public", jwks={"keys": [rsa_jwk(rsa_key, "r1")]}
    )
