"""The authorization endpoint, its sign-in page, the code exchange, userinfo and logout,
over HTTP on the app (each backend): OpenID Connect's rules, one test each."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from httpx import AsyncClient, Response

from auth_service.id_tokens import at_hash
from testsupport.auth_service import (
    STRONG_PASSWORD,
    add_client,
    bearer,
    register,
    running_app,
    settings_for,
)
from testsupport.oidc import AuthorizationRequest, redirect_parameters, sign_in_form

pytestmark = pytest.mark.anyio

REDIRECT_URI = "http://127.0.0.1:9999/callback"
OTHER_REDIRECT_URI = "http://127.0.0.1:9999/other"
ISSUER = "http://127.0.0.1:8000"
CODE_GRANTS = ["authorization_code", "refresh_token"]


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[AsyncClient]:
    """The app with a first-party `web` client, a third-party `partner`, and `ada`."""
    for client_id, first_party in (("web", True), ("partner", False), ("other", True)):
        await add_client(
            database_url,
            client_id,
            grant_types=CODE_GRANTS,
            scopes=["openid", "email", "profile"],
            redirect_uris=[REDIRECT_URI, OTHER_REDIRECT_URI],
            first_party=first_party,
        )
    async with running_app(settings_for(database_url, public_url=ISSUER)) as client:
        await register(client, "ada@example.com", username="ada")
        yield client


def _request(client_id: str = "web", **fields: Any) -> AuthorizationRequest:
    return AuthorizationRequest(client_id, REDIRECT_URI, **fields)


async def _sign_in(
    client: AsyncClient, request: AuthorizationRequest, password: str = STRONG_PASSWORD
) -> Response:
    page = await client.get(request.url())
    assert page.status_code == 200, page.text
    form = {**sign_in_form(page.text), "username": "ada", "password": password}
    return await client.post("/auth/authorize", data=form)


async def _code(client: AsyncClient, request: AuthorizationRequest) -> str:
    answer = await _sign_in(client, request)
    assert answer.status_code == 303, answer.text
    returned = redirect_parameters(answer.headers["location"])
    assert returned["state"] == request.state
    assert returned["iss"] == ISSUER
    return returned["code"]


async def _exchange(client: AsyncClient, request: AuthorizationRequest, code: str) -> Response:
    return await client.post("/auth/token", data=request.token_form(code))


async def test_the_page_is_one_post_form_with_username_password_and_a_strict_policy(
    app: AsyncClient,
) -> None:
    page = await app.get(_request().url())
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    fields = sign_in_form(page.text)
    assert {"username", "password", "csrf_token", "code_challenge"} <= set(fields)
    assert '<label for="username">' in page.text
    assert '<label for="password">' in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "form-action 'self' http://127.0.0.1:9999" in policy
    assert "script" not in page.text.lower()
    assert page.headers["cache-control"] == "no-store"


async def test_a_code_is_exchanged_once_for_tokens_and_an_id_token(app: AsyncClient) -> None:
    request = _request()
    tokens = await _exchange(app, request, await _code(app, request))
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert set(body) >= {"access_token", "refresh_token", "id_token", "expires_in"}
    header = jwt.get_unverified_header(body["id_token"])
    assert header["typ"] == "JWT"
    assert header["alg"] == "RS256"
    assert header["kid"]
    claims = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert claims["iss"] == ISSUER
    assert claims["aud"] == "web"
    assert claims["nonce"] == request.nonce
    assert claims["at_hash"] == at_hash(body["access_token"])
    assert claims["email"] == "ada@example.com"
    assert claims["preferred_username"] == "ada"
    assert {"exp", "iat", "auth_time", "sub", "sid"} <= set(claims)
    # The refresh token joins the usual rotation.
    refreshed = await app.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": "web",
        },
    )
    assert refreshed.status_code == 200, refreshed.text


async def test_a_replayed_code_is_refused_and_revokes_what_it_issued(app: AsyncClient) -> None:
    request = _request()
    code = await _code(app, request)
    first = (await _exchange(app, request, code)).json()
    again = await _exchange(app, request, code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert (await app.get("/auth/userinfo", headers=bearer(first))).status_code == 401
    refreshed = await app.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": "web",
        },
    )
    assert refreshed.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "overrides",
    [
        {"code_verifier": "x" * 43},
        {"redirect_uri": OTHER_REDIRECT_URI},
        {"client_id": "other"},
    ],
    ids=["wrong-verifier", "other-redirect-uri", "another-clients-code"],
)
async def test_a_code_is_bound_to_its_client_redirect_uri_and_verifier(
    app: AsyncClient, overrides: dict[str, str]
) -> None:
    request = _request()
    code = await _code(app, request)
    refused = await app.post("/auth/token", data=request.token_form(code, **overrides))
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


async def test_an_expired_code_is_refused(database_url: str) -> None:
    await add_client(
        database_url,
        "web",
        grant_types=CODE_GRANTS,
        scopes=["openid"],
        redirect_uris=[REDIRECT_URI],
    )
    settings = settings_for(database_url, public_url=ISSUER, authorization_code_ttl_seconds=1)
    async with running_app(settings) as client:
        await register(client, "ada@example.com", username="ada")
        request = _request(scope="openid")
        code = await _code(client, request)
        await asyncio.sleep(1.1)
        refused = await _exchange(client, request, code)
        assert refused.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "nobody"},
        {"client_id": None},
        {"redirect_uri": "http://127.0.0.1:9999/elsewhere"},
        {"redirect_uri": None},
    ],
    ids=["unknown-client", "no-client", "unregistered-redirect-uri", "no-redirect-uri"],
)
async def test_a_bad_client_or_redirect_uri_is_a_400_page_never_a_redirect(
    app: AsyncClient, overrides: dict[str, str | None]
) -> None:
    answer = await app.get(_request().url(**overrides))
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    assert "location" not in answer.headers


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"prompt": "consent"}, "invalid_request"),
        ({"client_id": "partner"}, "unauthorized_client"),
        ({"prompt": "none"}, "login_required"),
    ],
    ids=["no-pkce", "plain", "no-method", "token", "scope", "prompt", "third-party", "none"],
)
async def test_other_errors_redirect_with_error_state_and_iss(
    app: AsyncClient, overrides: dict[str, str | None], error: str
) -> None:
    request = _request()
    answer = await app.get(request.url(**overrides))
    assert answer.status_code == 303, answer.text
    returned = redirect_parameters(answer.headers["location"])
    assert answer.headers["location"].startswith(REDIRECT_URI + "?")
    assert returned["error"] == error
    assert returned["state"] == request.state
    assert returned["iss"] == ISSUER
    assert returned["error_description"]


async def test_a_signed_in_browser_skips_the_page_unless_prompt_is_login(
    app: AsyncClient,
) -> None:
    await _code(app, _request())
    again = _request()
    skipped = await app.get(again.url())
    assert skipped.status_code == 303
    assert "code" in redirect_parameters(skipped.headers["location"])
    silent = await app.get(again.url(prompt="none"))
    assert "code" in redirect_parameters(silent.headers["location"])
    forced = await app.get(again.url(prompt="login"))
    assert forced.status_code == 200
    assert "password" in sign_in_form(forced.text)


async def test_wrong_and_unknown_logins_get_the_same_page(app: AsyncClient) -> None:
    wrong = await _sign_in(app, _request(), password="not the password")
    page = await app.get(_request().url())
    form = {**sign_in_form(page.text), "username": "nobody", "password": "not the password"}
    unknown = await app.post("/auth/authorize", data=form)
    assert wrong.status_code == unknown.status_code == 400
    assert "The username or password is incorrect." in wrong.text
    assert 'aria-describedby="sign-in-error"' in wrong.text

    def error(text: str) -> str:
        return text.split('<p class="error"', 1)[1].split("</p>", 1)[0]

    assert error(wrong.text) == error(unknown.text)


async def test_a_form_without_its_csrf_token_signs_no_one_in(app: AsyncClient) -> None:
    page = await app.get(_request().url())
    form = {**sign_in_form(page.text), "username": "ada", "password": STRONG_PASSWORD}
    form["csrf_token"] = "0" * 64
    answer = await app.post("/auth/authorize", data=form)
    assert answer.status_code == 400
    assert "expired" in answer.text


async def test_the_sign_in_cookie_is_http_only_and_lax(app: AsyncClient) -> None:
    answer = await _sign_in(app, _request())
    cookie = next(
        line for line in answer.headers.get_list("set-cookie") if line.startswith("signin=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie


async def test_the_cookie_is_host_prefixed_and_secure_over_https(database_url: str) -> None:
    await add_client(
        database_url,
        "web",
        grant_types=CODE_GRANTS,
        scopes=["openid"],
        redirect_uris=[REDIRECT_URI],
    )
    settings = settings_for(database_url, public_url="https://id.example.com")
    async with running_app(settings) as client:
        page = await client.get(_request(scope="openid").url())
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("__Host-signin-csrf=")
    assert "Secure" in cookie


async def test_userinfo_answers_by_scope_and_refuses_without_openid(app: AsyncClient) -> None:
    request = _request(scope="openid email")
    tokens = (await _exchange(app, request, await _code(app, request))).json()
    info = await app.get("/auth/userinfo", headers=bearer(tokens))
    assert info.status_code == 200
    assert info.json()["email"] == "ada@example.com"
    assert "email_verified" in info.json()
    assert "preferred_username" not in info.json()
    password_grant = await app.post(
        "/auth/token",
        data={"grant_type": "password", "username": "ada", "password": STRONG_PASSWORD},
    )
    refused = await app.get("/auth/userinfo", headers=bearer(password_grant.json()))
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    missing = await app.get("/auth/userinfo")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"


async def test_an_id_token_is_not_an_access_token_nor_the_reverse(app: AsyncClient) -> None:
    request = _request()
    tokens = (await _exchange(app, request, await _code(app, request))).json()
    as_access = await app.get(
        "/auth/userinfo", headers={"Authorization": f"Bearer {tokens['id_token']}"}
    )
    assert as_access.status_code == 401
    # An access token as id_token_hint is no hint: no redirect to the client.
    logout = await app.get(
        "/auth/logout",
        params={"id_token_hint": tokens["access_token"], "post_logout_redirect_uri": REDIRECT_URI},
    )
    assert logout.status_code == 200


async def test_logout_ends_the_browser_session_and_the_clients_session(app: AsyncClient) -> None:
    request = _request()
    tokens = (await _exchange(app, request, await _code(app, request))).json()
    logout = await app.get(
        "/auth/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": REDIRECT_URI,
            "state": "bye",
        },
    )
    assert logout.status_code == 303
    assert logout.headers["location"] == f"{REDIRECT_URI}?state=bye"
    assert (await app.get("/auth/userinfo", headers=bearer(tokens))).status_code == 401
    # The browser is signed out: the page is shown again.
    assert (await app.get(_request().url())).status_code == 200
    unregistered = await app.get(
        "/auth/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "https://evil.example",
        },
    )
    assert unregistered.status_code == 200
    assert "signed out" in unregistered.text


async def test_the_token_endpoint_gives_the_code_grant_only_to_clients_registered_for_it(
    app: AsyncClient,
) -> None:
    request = AuthorizationRequest("public", REDIRECT_URI)
    refused = await app.post("/auth/token", data=request.token_form("A" * 43))
    assert refused.json()["error"] == "unauthorized_client"


async def test_the_browser_session_is_listed_among_the_accounts_sessions(
    app: AsyncClient,
) -> None:
    request = _request()
    tokens = (await _exchange(app, request, await _code(app, request))).json()
    listed = (await app.get("/auth/sessions", headers=bearer(tokens))).json()["items"]
    assert sorted((item["client_id"] or "", item["current"]) for item in listed) == [
        ("", False),  # the sign-in page's own session
        ("web", True),
    ]
    browser = next(item for item in listed if item["client_id"] is None)
    ended = await app.delete(f"/auth/sessions/{browser['id']}", headers=bearer(tokens))
    assert ended.status_code == 204
    # Revoked: the next authorization shows the page again.
    assert (await app.get(_request().url())).status_code == 200


async def test_the_page_shares_the_token_endpoints_throttle(database_url: str) -> None:
    await add_client(
        database_url,
        "web",
        grant_types=CODE_GRANTS,
        scopes=["openid"],
        redirect_uris=[REDIRECT_URI],
    )
    settings = settings_for(
        database_url, public_url=ISSUER, login_free_attempts_per_account_address=1
    )
    async with running_app(settings) as client:
        await register(client, "ada@example.com", username="ada")
        wrong = {"grant_type": "password", "username": "ada", "password": "not it"}
        for _ in range(10):  # failures at the token endpoint until it makes this login wait
            if (await client.post("/auth/token", data=wrong)).status_code == 429:
                break
        else:
            pytest.fail("the token endpoint never throttled")
        # The right password on the page now waits, as it would at the token endpoint.
        throttled = await _sign_in(client, _request(scope="openid"))
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) > 0
        assert "Too many failed sign-ins" in throttled.text
