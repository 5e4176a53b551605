"""The profile endpoints over HTTP (ASGI), with the real app, its lifespan and a database."""

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest

from testsupport.tokens import JwksServer, SigningKey, claims_for, mint, service_claims_for

pytestmark = pytest.mark.anyio

INSUFFICIENT_SCOPE = 'Bearer error="insufficient_scope", scope="users:read"'


def bearer(key: SigningKey, subject: uuid.UUID | None = None, **claims: Any) -> dict[str, str]:
    """A person's token, as the password grant issues it."""
    return {"Authorization": f"Bearer {mint(key, claims_for(subject, **claims))}"}


def service_bearer(key: SigningKey, client_id: str = "reports", **claims: Any) -> dict[str, str]:
    """A service's own token, as the client_credentials grant issues it."""
    return {"Authorization": f"Bearer {mint(key, service_claims_for(client_id, **claims))}"}


async def test_me_answers_the_callers_profile_created_on_first_use(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    account = uuid.uuid4()
    response = await client.get("/users/me", headers=bearer(signing_key, account))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"
    profile = response.json()
    assert profile["id"] == str(account)
    assert set(profile) == {"id", "display_name", "bio", "avatar_url", "created_at", "updated_at"}
    assert profile["created_at"].endswith("Z")

    again = await client.get("/users/me", headers=bearer(signing_key, account))
    assert again.json() == profile


async def test_simultaneous_first_calls_to_me_create_one_profile(
    client: httpx.AsyncClient, signing_key: SigningKey, jwks_server: JwksServer
) -> None:
    account = uuid.uuid4()
    responses = await asyncio.gather(
        *(client.get("/users/me", headers=bearer(signing_key, account)) for _ in range(10))
    )
    assert [response.status_code for response in responses] == [200] * 10
    assert len({response.json()["created_at"] for response in responses}) == 1
    assert jwks_server.fetches == 1  # and the cold key cache made one fetch for all of them

    admin = await client.get("/users?limit=100", headers=bearer(signing_key, roles=["admin"]))
    assert [item["id"] for item in admin.json()["items"]].count(str(account)) == 1


async def test_patch_me_updates_the_fields_sent(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    headers = bearer(signing_key)
    body = {
        "display_name": "Ada",
        "bio": "Line one\nline two",
        "avatar_url": "https://a.test/x.png",
    }
    response = await client.patch("/users/me", json=body, headers=headers)
    assert response.status_code == 200
    assert {name: response.json()[name] for name in body} == body

    cleared = await client.patch("/users/me", json={"bio": None}, headers=headers)
    assert cleared.json()["bio"] is None
    assert cleared.json()["display_name"] == "Ada"
    assert (await client.get("/users/me", headers=headers)).json() == cleared.json()


INVALID_BODIES: list[Any] = [
    {"display_name": "Ada", "role": "admin"},  # unknown field
    {"id": str(uuid.uuid4())},
    {"created_at": "2020-01-01T00:00:00Z"},
    {"display_name": 42},
    {"display_name": ["Ada"]},
    {"bio": {"text": "x"}},
    {"display_name": "x" * 101},
    {"bio": "x" * 501},
    {"avatar_url": "http://a.test/x.png"},
    {"avatar_url": "javascript:alert(1)"},
    {"avatar_url": "https://"},
    {"avatar_url": "https://user:secret@a.test/x.png"},
    {"avatar_url": "https://a.test/" + "x" * 2048},
    {"display_name": "nul\u0000byte"},
    {"display_name": "line\nbreak"},
    {"bio": "bell\u0007"},
    [],
    "text",
    None,
]


async def test_invalid_patch_bodies_are_422_and_change_nothing(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    headers = bearer(signing_key)
    before = (await client.patch("/users/me", json={"display_name": "Ada"}, headers=headers)).json()
    for body in INVALID_BODIES:
        response = await client.patch("/users/me", json=body, headers=headers)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
    for raw in (b"{not json", b'{"display_name": "\\ud800"}', b"\xff\xfe"):
        response = await client.patch(
            "/users/me", content=raw, headers={**headers, "Content-Type": "application/json"}
        )
        assert response.status_code == 422, raw
    assert (await client.get("/users/me", headers=headers)).json() == before


async def test_a_profile_shows_its_public_fields_to_anyone_signed_in(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    owner = uuid.uuid4()
    await client.patch(
        "/users/me", json={"display_name": "Ada"}, headers=bearer(signing_key, owner)
    )
    response = await client.get(f"/users/{owner}", headers=bearer(signing_key))
    assert response.status_code == 200
    assert response.json() == {
        "id": str(owner),
        "display_name": "Ada",
        "bio": None,
        "avatar_url": None,
    }


async def test_an_unknown_profile_is_a_404_problem(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    response = await client.get(f"/users/{uuid.uuid4()}", headers=bearer(signing_key))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    malformed = await client.get("/users/not-a-uuid", headers=bearer(signing_key))
    assert malformed.status_code == 422


async def test_every_profile_route_needs_a_token(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/users/me"),
        ("PATCH", "/users/me"),
        ("GET", "/users"),
        ("GET", f"/users/{uuid.uuid4()}"),
    ]:
        missing = await client.request(method, path, json={})
        assert missing.status_code == 401, path
        assert missing.headers["www-authenticate"] == "Bearer"
        bad = await client.request(method, path, json={}, headers={"Authorization": "Bearer x.y.z"})
        assert bad.status_code == 401, path
        assert bad.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_a_person_without_the_admin_role_may_not_list_profiles(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    response = await client.get("/users", headers=bearer(signing_key, roles=["user"]))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == INSUFFICIENT_SCOPE


async def test_a_service_with_users_read_lists_and_reads_profiles(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    owner = uuid.uuid4()
    await client.patch(
        "/users/me", json={"display_name": "Ada"}, headers=bearer(signing_key, owner)
    )
    service = service_bearer(signing_key, scope="users:read")
    listing = await client.get("/users?limit=100", headers=service)
    assert listing.status_code == 200
    assert str(owner) in [item["id"] for item in listing.json()["items"]]
    one = await client.get(f"/users/{owner}", headers=service)
    assert one.status_code == 200
    assert one.json()["display_name"] == "Ada"


async def test_a_service_without_users_read_may_neither_list_nor_read(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    service = service_bearer(signing_key, scope="reports:write")
    for path in ("/users", f"/users/{uuid.uuid4()}"):
        response = await client.get(path, headers=service)
        assert response.status_code == 403, path
        assert response.headers["www-authenticate"] == INSUFFICIENT_SCOPE
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_person_whose_client_was_granted_users_read_may_list(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    response = await client.get("/users", headers=bearer(signing_key, scope="profile users:read"))
    assert response.status_code == 200


@pytest.mark.parametrize("method", ["GET", "PATCH"])
async def test_a_services_token_has_no_profile_of_its_own(
    client: httpx.AsyncClient, signing_key: SigningKey, method: str
) -> None:
    service = service_bearer(signing_key, scope="users:read")
    response = await client.request(method, "/users/me", json={}, headers=service)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "www-authenticate" not in response.headers
    admin = await client.get("/users?limit=100", headers=bearer(signing_key, roles=["admin"]))
    assert admin.json()["items"] == []  # and nothing was created for it


@pytest.mark.parametrize(
    "subject", ["not-a-uuid", "{12345678-1234-5678-1234-567812345678}", "12345678123456781234"]
)
async def test_a_persons_token_must_name_an_account_id(
    client: httpx.AsyncClient, signing_key: SigningKey, subject: str
) -> None:
    headers = {"Authorization": f"Bearer {mint(signing_key, claims_for(subject))}"}
    response = await client.get("/users/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_an_admin_pages_through_every_profile(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    accounts = {uuid.uuid4() for _ in range(5)}
    for account in accounts:
        await client.get("/users/me", headers=bearer(signing_key, account))
    admin = bearer(signing_key, roles=["admin"])

    seen: list[str] = []
    url = "/users?limit=2"
    while True:
        page = (await client.get(url, headers=admin)).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        url = f"/users?limit=2&cursor={page['next_cursor']}"
    assert set(seen) == {str(account) for account in accounts}
    assert len(seen) == len(set(seen))

    default = (await client.get("/users", headers=admin)).json()
    assert [item["id"] for item in default["items"]] == seen
    assert default["next_cursor"] is None


async def test_bad_listing_parameters_are_422(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    admin = bearer(signing_key, roles=["admin"])
    for query in [
        "limit=0",
        "limit=101",
        "limit=x",
        "cursor=bogus",
        "cursor=",
        "cursor=" + "A" * 201,
    ]:
        response = await client.get(f"/users?{query}", headers=admin)
        assert response.status_code == 422, query
        assert response.headers["content-type"] == "application/problem+json"


async def test_the_openapi_document_still_describes_the_profile_answers(
    client: httpx.AsyncClient,
) -> None:
    # The routes return ready-made responses; `response_model` must still document them.
    paths = (await client.get("/users/openapi.json")).json()["paths"]
    me = paths["/users/me"]["get"]["responses"]["200"]["content"]["application/json"]
    assert me["schema"] == {"$ref": "#/components/schemas/FullProfile"}
    one = paths["/users/{profile_id}"]["get"]["responses"]["200"]["content"]["application/json"]
    assert one["schema"] == {"$ref": "#/components/schemas/PublicProfile"}


async def test_the_openapi_document_lists_each_routes_security_and_scopes(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/users/openapi.json")).json()
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    paths = document["paths"]
    assert paths["/users/me"]["get"]["security"] == [{"HTTPBearer": []}]
    assert paths["/users/me"]["patch"]["security"] == [{"HTTPBearer": []}]
    assert paths["/users/{profile_id}"]["get"]["security"] == [{"HTTPBearer": ["users:read"]}]
    assert paths["/users"]["get"]["security"] == [{"HTTPBearer": ["users:read"]}]
    assert "security" not in paths["/users/health"]["get"]
    # Who may call without the scope is said in each operation's description.
    assert "admin" in paths["/users"]["get"]["description"]
    assert "person" in paths["/users/{profile_id}"]["get"]["description"]


async def test_an_avatar_url_at_the_documented_length_is_accepted_and_stored_normalised(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    # Normalising adds a `/` to an empty path: at the length the document allows, a URL
    # must still fit where it is stored.
    document = (await client.get("/users/openapi.json")).json()
    avatar = document["components"]["schemas"]["ProfileUpdate"]["properties"]["avatar_url"]
    limit = avatar["anyOf"][0]["maxLength"]
    host = ".".join(["a" * 63] * 40)[: limit - len("https://")].rstrip(".")
    url = f"https://{host}"
    assert len(url) >= limit - 1
    response = await client.patch(
        "/users/me", json={"avatar_url": url}, headers=bearer(signing_key)
    )
    assert response.status_code == 200, response.text
    assert response.json()["avatar_url"] == f"{url}/"


@pytest.mark.parametrize("field", ["display_name", "bio"])
async def test_the_document_refuses_the_characters_the_service_refuses(
    client: httpx.AsyncClient, signing_key: SigningKey, field: str
) -> None:
    document = (await client.get("/users/openapi.json")).json()
    text = document["components"]["schemas"]["ProfileUpdate"]["properties"][field]["anyOf"][0]
    pattern = re.compile(text["pattern"])
    headers = bearer(signing_key)
    for char in ("a", "\t", "\n", "\r", "\x00", "\x07", "\x1f", "\x7f", "\x85", "\x9f", "é"):
        response = await client.patch("/users/me", json={field: f"x{char}y"}, headers=headers)
        documented = pattern.fullmatch(f"x{char}y") is not None
        assert (response.status_code == 200) == documented, (field, char, response.text)
