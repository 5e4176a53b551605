"""The FastAPI dependencies: RFC 6750 challenges, one body for every bad token, scopes, roles."""

import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Security

from auth_client import Principal, TokenVerifier
from auth_client.fastapi import (
    CurrentPerson,
    CurrentPrincipal,
    RequireRoles,
    RequireScopes,
    current_principal,
    install_problem_handler,
)
from testsupport.tokens import POLICY, SigningKey, StaticKeys, claims_for, mint, service_claims_for

pytestmark = pytest.mark.anyio

INVALID = 'Bearer error="invalid_token"'
PROBLEM = "application/problem+json"


def is_person(principal: Principal) -> bool:
    return principal.is_person


def build_app(verifier: TokenVerifier | None) -> FastAPI:
    app = FastAPI()
    install_problem_handler(app)
    if verifier is not None:
        app.state.token_verifier = verifier

    @app.get("/whoami")
    async def whoami(principal: CurrentPrincipal) -> dict[str, Any]:
        return {"sub": principal.subject, "service": principal.is_service}

    @app.get("/me")
    async def me(person: CurrentPerson) -> dict[str, str]:
        return {"sub": person.subject}

    @app.get("/admin")
    async def admin(principal: Annotated[Principal, RequireRoles("admin")]) -> dict[str, str]:
        return {"sub": principal.subject}

    @app.get("/audit", dependencies=[RequireRoles("admin", "auditor")])
    async def audit() -> dict[str, str]:
        return {}

    @app.get("/reports", dependencies=[RequireScopes("reports:read")])
    async def reports() -> list[str]:
        return ["weekly"]

    @app.get("/exports")
    async def exports(
        principal: Annotated[Principal, RequireScopes("reports:read", "reports:export")],
    ) -> dict[str, str]:
        return {"sub": principal.subject}

    @app.get("/profiles/{name}")
    async def profile(
        name: str, principal: Annotated[Principal, RequireScopes("users:read", unless=is_person)]
    ) -> dict[str, str]:
        return {"name": name}

    @app.get("/declared")
    async def declared(
        principal: Annotated[Principal, Security(current_principal, scopes=["declared:read"])],
    ) -> dict[str, str]:
        return {"sub": principal.subject}

    return app


@pytest.fixture
def verifier(signing_key: SigningKey) -> TokenVerifier:
    return TokenVerifier(StaticKeys(signing_key), POLICY)


@pytest.fixture
async def client(verifier: TokenVerifier) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(verifier))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": ""},
    ],
)
async def test_no_bearer_token_is_a_401_with_a_bare_challenge(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get("/whoami", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 401
    assert body["type"] == "about:blank"
    assert body["title"] == "Unauthorized"
    assert "access token is required" in body["detail"]


async def test_every_bad_token_gets_the_same_401(
    client: httpx.AsyncClient, signing_key: SigningKey, other_key: SigningKey
) -> None:
    now = int(time.time())
    header, payload, _signature = mint(signing_key).split(".")
    bad_tokens = [
        "garbage",
        mint(signing_key, exp=now - 3600, iat=now - 7200),  # expired
        mint(other_key),  # unknown kid
        mint(signing_key, aud="someone-else"),
        mint(signing_key, headers={"typ": "JWT"}),  # an ID token
        mint(signing_key, without=("client_id",)),
        f"{header}.{payload}.",
        "x" * 10_000,
    ]
    bodies = set()
    for token in bad_tokens:
        response = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == INVALID
        assert response.headers["content-type"] == PROBLEM
        bodies.add(response.text)
    assert len(bodies) == 1


async def test_a_good_token_passes_with_any_case_of_the_scheme(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    token = mint(signing_key)
    for scheme in ("Bearer", "bearer", "BEARER"):
        response = await client.get("/whoami", headers={"Authorization": f"{scheme} {token}"})
        assert response.status_code == 200


async def test_two_authorization_headers_are_refused(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    token = mint(signing_key)
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", "Bearer other")]
    response = await client.get("/whoami", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == INVALID


async def test_a_missing_role_is_a_403_problem(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    token = mint(signing_key, roles=["user"])
    response = await client.get("/admin", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert "www-authenticate" not in response.headers
    assert "admin" in response.json()["detail"]


async def test_every_role_listed_is_needed(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    only_admin = await client.get("/audit", headers=bearer(mint(signing_key, roles=["admin"])))
    assert only_admin.status_code == 403
    assert "auditor" in only_admin.json()["detail"]
    both = bearer(mint(signing_key, roles=["admin", "auditor"]))
    assert (await client.get("/audit", headers=both)).status_code == 200


async def test_the_role_admits_its_holder(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    token = mint(signing_key, roles=["user", "admin"])
    response = await client.get("/admin", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


async def test_a_bad_token_on_a_role_route_is_still_a_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == INVALID


async def test_a_missing_scope_is_a_403_naming_it_in_the_challenge(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    response = await client.get("/reports", headers=bearer(mint(signing_key, scope="profile")))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="reports:read"'
    )
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["title"] == "Forbidden"
    assert "reports:read" in response.json()["detail"]


async def test_a_token_holding_the_scope_passes(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    token = mint(signing_key, service_claims_for(scope="reports:read other"))
    response = await client.get("/reports", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == ["weekly"]


async def test_every_scope_listed_is_needed(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    one = await client.get("/exports", headers=bearer(mint(signing_key, scope="reports:read")))
    assert one.status_code == 403
    assert one.headers["www-authenticate"].endswith('scope="reports:read reports:export"')
    both = bearer(mint(signing_key, scope="reports:export reports:read"))
    assert (await client.get("/exports", headers=both)).status_code == 200


async def test_a_role_does_not_stand_in_for_a_scope(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    token = mint(signing_key, roles=["admin", "reports:read"], scope="profile")
    assert (await client.get("/reports", headers=bearer(token))).status_code == 403


async def test_unless_admits_a_token_without_the_scope_only_when_it_holds(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    person = bearer(mint(signing_key, scope="profile"))
    assert (await client.get("/profiles/ada", headers=person)).status_code == 200
    service = bearer(mint(signing_key, service_claims_for(scope="other")))
    refused = await client.get("/profiles/ada", headers=service)
    assert refused.status_code == 403
    assert refused.headers["www-authenticate"].endswith('scope="users:read"')
    reader = bearer(mint(signing_key, service_claims_for(scope="users:read")))
    assert (await client.get("/profiles/ada", headers=reader)).status_code == 200


async def test_scopes_declared_with_security_on_the_principal_are_enforced(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    # Declared the way FastAPI's documentation does it: never documented without being checked.
    refused = await client.get("/declared", headers=bearer(mint(signing_key, scope="profile")))
    assert refused.status_code == 403
    holder = bearer(mint(signing_key, scope="declared:read"))
    assert (await client.get("/declared", headers=holder)).status_code == 200


async def test_a_bad_token_on_a_scope_route_is_still_a_401(client: httpx.AsyncClient) -> None:
    for path in ("/reports", "/exports", "/profiles/ada", "/me"):
        missing = await client.get(path)
        assert missing.status_code == 401, path
        assert missing.headers["www-authenticate"] == "Bearer"
        bad = await client.get(path, headers=bearer("nope"))
        assert bad.status_code == 401, path
        assert bad.headers["www-authenticate"] == INVALID


async def test_a_services_token_is_told_apart_from_a_persons(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    service = bearer(mint(signing_key, service_claims_for("reports")))
    assert (await client.get("/whoami", headers=service)).json() == {
        "sub": "reports",
        "service": True,
    }
    account = uuid.uuid4()
    person = bearer(mint(signing_key, claims_for(account)))
    assert (await client.get("/whoami", headers=person)).json() == {
        "sub": str(account),
        "service": False,
    }


async def test_a_persons_route_refuses_a_services_token(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    service = await client.get("/me", headers=bearer(mint(signing_key, service_claims_for())))
    assert service.status_code == 403
    assert service.headers["content-type"] == PROBLEM
    assert "person" in service.json()["detail"]
    account = uuid.uuid4()
    person = await client.get("/me", headers=bearer(mint(signing_key, claims_for(account))))
    assert person.json() == {"sub": str(account)}


async def test_a_revoked_session_gets_the_invalid_token_answer(
    client: httpx.AsyncClient, verifier: TokenVerifier, signing_key: SigningKey
) -> None:
    claims = claims_for()
    token = bearer(mint(signing_key, claims))
    assert (await client.get("/whoami", headers=token)).status_code == 200
    verifier.deny_list.deny_session(claims["sid"], until=time.time() + 900)
    response = await client.get("/whoami", headers=token)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == INVALID


async def test_the_openapi_document_lists_the_bearer_scheme_and_each_routes_scopes(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    scheme = document["components"]["securitySchemes"]["HTTPBearer"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    paths = document["paths"]

    def security(path: str) -> list[dict[str, list[str]]]:
        requirement: list[dict[str, list[str]]] = paths[path]["get"]["security"]
        return requirement

    assert security("/whoami") == [{"HTTPBearer": []}]
    assert security("/me") == [{"HTTPBearer": []}]
    assert security("/admin") == [{"HTTPBearer": []}]
    assert security("/reports") == [{"HTTPBearer": ["reports:read"]}]
    assert security("/exports") == [{"HTTPBearer": ["reports:read", "reports:export"]}]
    assert security("/profiles/{name}") == [{"HTTPBearer": ["users:read"]}]
    assert security("/declared") == [{"HTTPBearer": ["declared:read"]}]


async def test_an_app_without_a_verifier_fails_loudly_not_open() -> None:
    transport = httpx.ASGITransport(app=build_app(None), raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        with pytest.raises(RuntimeError, match=r"app\.state\.token_verifier"):
            await http.get("/whoami", headers=bearer("a.b.c"))


@pytest.mark.parametrize("scopes", [(), ("",), ("two words",), ('quote"d',), ("back\\slash",)])
def test_a_malformed_scope_requirement_is_refused_at_import(scopes: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="scope names"):
        RequireScopes(*scopes)


def test_an_empty_role_requirement_is_refused_at_import() -> None:
    with pytest.raises(ValueError, match="role names"):
        RequireRoles()
