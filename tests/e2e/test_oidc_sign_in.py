"""Browser and app sign-in (OpenID Connect) through the gateway, with code no one here wrote
on the client side: Authlib's OAuth2 client (PKCE S256, nonce) signs in through the
hosted page and validates its ID token against the discovered key set; every refusal a
client may meet; and a real headless Chromium runs the whole flow of a small relying
party started here: sign in, back with a code, tokens, `/users/me`, sign out.

Each client is registered with the real `auth-service clients create`, as an operator would.
"""

import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from playwright.sync_api import BrowserContext

from tests.e2e.test_service_clients import create_client
from testsupport import ROOT
from testsupport.accounts import register_and_log_in
from testsupport.browser import chromium, watch
from testsupport.oidc import (
    AuthorizationRequest,
    Pkce,
    redirect_parameters,
    sign_in_form,
)
from testsupport.stack import Stack, free_port

SCREENSHOT = ROOT / "docs" / "screenshots" / "sign-in.png"
PASSWORD = "correct horse battery staple"
SCOPES = "openid email profile"


def register_code_client(stack: Stack, *redirect_uris: str) -> str:
    """A public first-party client for the authorization_code grant."""
    stack.require_local()
    client_id = f"web-{uuid.uuid4().hex[:8]}"
    create_client(
        stack,
        client_id,
        "--type",
        "public",
        "--grant-types",
        "authorization_code,refresh_token",
        "--scopes",
        "openid,email,profile",
        "--redirect-uris",
        ",".join(redirect_uris),
    )
    return client_id


@dataclass(frozen=True)
class Clients:
    """The module's clients, registered once per stack (each `clients create` is a process)."""

    web: str
    other: str
    redirect_uri: str
    party_port: int

    @property
    def party_url(self) -> str:
        return f"http://127.0.0.1:{self.party_port}"


@pytest.fixture(scope="module")
def clients(stack: Stack) -> Clients:
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    party_port = free_port()
    party = f"http://127.0.0.1:{party_port}"
    web = register_code_client(stack, redirect_uri, f"{party}/callback", f"{party}/signed-out")
    return Clients(web, register_code_client(stack, redirect_uri), redirect_uri, party_port)


@pytest.fixture(scope="module")
def discovery(stack: Stack) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{stack.url}/.well-known/openid-configuration").json()
    return document


@pytest.fixture
def account(gateway: httpx.Client) -> str:
    """A new account's username (registered through the gateway)."""
    return register_and_log_in(gateway).email


def sign_in_through_the_page(browser: httpx.Client, url: str, login: str) -> str:
    """What a person does on the page, as plain HTTP: load it, fill it in, send it; the
    Location the page answers with (back to the client)."""
    page = browser.get(url)
    assert page.status_code == 200, page.text
    form = {**sign_in_form(page.text), "username": login, "password": PASSWORD}
    answer = browser.post(urlsplit(url)._replace(query="").geturl(), data=form)
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def test_discovery_describes_openid_connect_sign_in(
    discovery: dict[str, Any], stack: Stack
) -> None:
    assert discovery["authorization_endpoint"] == f"{stack.url}/auth/authorize"
    assert discovery["userinfo_endpoint"] == f"{stack.url}/auth/userinfo"
    assert discovery["end_session_endpoint"] == f"{stack.url}/auth/logout"
    assert discovery["response_types_supported"] == ["code"]
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert discovery["id_token_signing_alg_values_supported"] == ["RS256"]
    assert discovery["subject_types_supported"] == ["public"]
    assert discovery["authorization_response_iss_parameter_supported"] is True
    assert "authorization_code" in discovery["grant_types_supported"]
    assert {"openid", "email", "profile"} <= set(discovery["scopes_supported"])
    assert {"sub", "email", "preferred_username"} <= set(discovery["claims_supported"])


def test_authlib_signs_in_with_pkce_and_validates_the_id_token(
    stack: Stack, discovery: dict[str, Any], clients: Clients, account: str
) -> None:
    client_id, redirect_uri = clients.web, clients.redirect_uri
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    with (
        OAuth2Client(
            client_id,
            scope=SCOPES,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="none",
        ) as client,
        httpx.Client(timeout=10) as browser,
    ):
        url, state = client.create_authorization_url(
            discovery["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        location = sign_in_through_the_page(browser, url, account)
        assert redirect_parameters(location)["iss"] == discovery["issuer"]  # RFC 9207
        token = client.fetch_token(
            discovery["token_endpoint"],
            authorization_response=location,
            state=state,
            code_verifier=verifier,
        )
        info = client.get(discovery["userinfo_endpoint"])
    keys = jwt.PyJWKSet.from_dict(httpx.get(discovery["jwks_uri"]).json())
    kid = jwt.get_unverified_header(token["id_token"])["kid"]
    claims = jwt.decode(
        token["id_token"],
        next(key for key in keys.keys if key.key_id == kid).key,
        algorithms=discovery["id_token_signing_alg_values_supported"],
        audience=client_id,
        issuer=discovery["issuer"],
        options={"require": ["exp", "iat", "auth_time", "at_hash", "nonce", "sub"]},
    )
    assert claims["nonce"] == nonce
    assert info.status_code == 200
    assert info.json()["sub"] == claims["sub"]
    assert info.json()["email"] == account
    me = httpx.get(
        f"{stack.url}/users/me", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["id"] == claims["sub"]
    # The ID token is no access token: the users service refuses it.
    refused = httpx.get(
        f"{stack.url}/users/me", headers={"Authorization": f"Bearer {token['id_token']}"}
    )
    assert refused.status_code == 401


@pytest.fixture
def code_client(clients: Clients) -> AuthorizationRequest:
    return AuthorizationRequest(clients.web, clients.redirect_uri)


def _code(stack: Stack, request: AuthorizationRequest, login: str) -> str:
    with httpx.Client(timeout=10) as browser:
        location = sign_in_through_the_page(browser, request.url(stack.url), login)
    return redirect_parameters(location)["code"]


def test_a_replayed_code_is_refused_and_its_tokens_revoked(
    stack: Stack, gateway: httpx.Client, code_client: AuthorizationRequest, account: str
) -> None:
    code = _code(stack, code_client, account)
    first = gateway.post("/auth/token", data=code_client.token_form(code))
    assert first.status_code == 200, first.text
    replayed = gateway.post("/auth/token", data=code_client.token_form(code))
    assert replayed.status_code == 400
    assert replayed.json()["error"] == "invalid_grant"
    tokens = first.json()
    userinfo = gateway.get(
        "/auth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.status_code == 401
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    refreshed = gateway.post("/auth/token", data={**refresh, "client_id": code_client.client_id})
    assert refreshed.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "tamper",
    ["wrong-verifier", "another-clients-code"],
)
def test_a_code_works_only_with_its_verifier_and_its_client(
    stack: Stack,
    gateway: httpx.Client,
    code_client: AuthorizationRequest,
    clients: Clients,
    account: str,
    tamper: str,
) -> None:
    code = _code(stack, code_client, account)
    if tamper == "wrong-verifier":
        form = code_client.token_form(code, code_verifier=Pkce.new().verifier)
    else:
        form = code_client.token_form(code, client_id=clients.other)
    refused = gateway.post("/auth/token", data=form)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"prompt": "none"}, "login_required"),
    ],
    ids=["no-pkce", "plain", "prompt-none-without-a-session"],
)
def test_refusals_after_the_client_is_known_go_back_to_it(
    stack: Stack, code_client: AuthorizationRequest, overrides: dict[str, Any], error: str
) -> None:
    answer = httpx.get(code_client.url(stack.url, **overrides))
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(code_client.redirect_uri + "?")
    returned = redirect_parameters(answer.headers["location"])
    assert returned["error"] == error
    assert returned["state"] == code_client.state
    assert returned["iss"] == stack.url


def test_the_page_keeps_its_own_policy_through_the_gateway(
    stack: Stack, code_client: AuthorizationRequest
) -> None:
    page = httpx.get(code_client.url(stack.url))
    assert page.status_code == 200
    (policy,) = page.headers.get_list("content-security-policy")
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'none'" in policy
    origin = code_client.redirect_uri.rsplit("/", 1)[0]
    assert f"form-action 'self' {origin}" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"


def test_an_unregistered_redirect_uri_is_a_page_never_a_redirect(
    stack: Stack, code_client: AuthorizationRequest
) -> None:
    answer = httpx.get(code_client.url(stack.url, redirect_uri="https://evil.example/cb"))
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    assert "location" not in answer.headers


def test_an_expired_code_is_refused(
    private_stack: Callable[..., AbstractContextManager[Stack]],
) -> None:
    """On a stack of its own whose codes live one second (AUTHORIZATION_CODE_TTL_SECONDS)."""
    with private_stack(AUTHORIZATION_CODE_TTL_SECONDS="1", BCRYPT_COST="4") as stack:
        redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
        request = AuthorizationRequest(register_code_client(stack, redirect_uri), redirect_uri)
        with httpx.Client(base_url=stack.url, timeout=10) as gateway:
            code = _code(stack, request, register_and_log_in(gateway).email)
            time.sleep(1.5)
            refused = gateway.post("/auth/token", data=request.token_form(code))
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


class RelyingParty:
    """A small web application that signs people in with the platform, as a team would
    write one: a link to sign in, a callback that exchanges the code and calls the users
    service, a link to sign out. Plain standard library and httpx."""

    def __init__(self, platform: str, client_id: str, port: int) -> None:
        self.platform = platform
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        self.client_id = client_id
        self.pending: dict[str, AuthorizationRequest] = {}
        self.errors: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        party = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                try:
                    status, headers, body = party.answer(self.path)
                except Exception as exc:  # the test reads it, not a browser
                    party.errors.append(repr(exc))
                    status, headers, body = 500, {}, "error"
                self.send_response(status)
                for name, value in {"Content-Type": "text/html", **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body.encode("utf-8"))

        return Handler

    def answer(self, path: str) -> tuple[int, dict[str, str], str]:
        parts = urlsplit(path)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        if parts.path == "/":
            return 200, {}, '<h1>Notes</h1><a id="sign-in" href="/login">Sign in</a>'
        if parts.path == "/login":
            request = AuthorizationRequest(self.client_id, f"{self.url}/callback")
            self.pending[request.state] = request
            return 302, {"Location": request.url(self.platform)}, ""
        if parts.path == "/callback":
            request = self.pending.pop(query["state"])
            assert query["iss"] == self.platform
            tokens = httpx.post(
                f"{self.platform}/auth/token", data=request.token_form(query["code"])
            ).json()
            claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
            assert claims["nonce"] == request.nonce
            me = httpx.get(
                f"{self.platform}/users/me",
                headers={"Authorization": f"Bearer {tokens['access_token']}"},
            ).json()
            logout = f"{self.platform}/auth/logout?" + urlencode(
                {
                    "id_token_hint": tokens["id_token"],
                    "post_logout_redirect_uri": f"{self.url}/signed-out",
                    "state": "bye",
                }
            )
            who = f'<p id="who">Signed in as {me["id"]}</p>'
            return 200, {}, f'{who}<a id="sign-out" href="{escape(logout)}">Sign out</a>'
        if parts.path == "/favicon.ico":
            return 204, {}, ""
        if parts.path == "/signed-out":
            return 200, {}, f'<p id="bye">Signed out ({query.get("state")})</p>'
        return 404, {}, "not found"

    def __enter__(self) -> "RelyingParty":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserContext]:
    with chromium() as context:
        context.set_default_timeout(30_000)
        yield context


def test_a_browser_signs_in_to_a_relying_party_and_out_again(
    stack: Stack, gateway: httpx.Client, browser: BrowserContext, clients: Clients
) -> None:
    person = register_and_log_in(gateway)
    with RelyingParty(stack.url, clients.web, clients.party_port) as party:
        page = browser.new_page()
        watched = watch(page)
        page.goto(party.url)
        page.click("#sign-in")
        page.wait_for_selector("#password")
        assert page.url.startswith(f"{stack.url}/auth/authorize")
        page.fill("#username", person.email)
        page.fill("#password", PASSWORD)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        started = time.monotonic()
        page.click("button[type=submit]")
        page.wait_for_selector("#who")
        assert time.monotonic() - started < 10
        assert page.text_content("#who") == f"Signed in as {person.id}"
        page.click("#sign-out")
        page.wait_for_selector("#bye")
        assert page.text_content("#bye") == "Signed out (bye)"
        # Signed out of the platform too: a new sign-in shows the page again.
        page.goto(party.url)
        page.click("#sign-in")
        page.wait_for_selector("#password")
        page.close()
    assert party.errors == []
    assert watched.problems == [], watched.requested
