"""The API docs pages in a real browser (headless Chromium) through the gateway.

Each page must render Swagger UI and list every operation of its service's document, with
nothing loaded from anywhere but the gateway (the browser here has no internet access, as a
CI runner or a closed network) and nothing refused by the page's Content-Security-Policy.
A screenshot of each page goes to docs/screenshots/, for people to look at.
"""

import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page

from testsupport import ROOT
from testsupport.browser import chromium, watch
from testsupport.stack import Stack

SCREENSHOTS = ROOT / "docs" / "screenshots"
RENDER_TIMEOUT_MS = 30_000
PASSWORD = "correct horse battery staple"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserContext]:
    with chromium() as context:
        context.set_default_timeout(RENDER_TIMEOUT_MS)
        yield context


def documented_operations(gateway: httpx.Client, service: str) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation in the service's OpenAPI document."""
    document = gateway.get(f"/{service}/openapi.json").json()
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def listed_operations(page: Page) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation Swagger UI shows on the page."""
    page.wait_for_selector(".opblock")
    listed: list[list[str]] = page.eval_on_selector_all(
        ".opblock",
        """blocks => blocks.map(block => [
            block.querySelector('.opblock-summary-method').textContent,
            block.querySelector('.opblock-summary-path').getAttribute('data-path'),
        ])""",
    )
    return {(method, path) for method, path in listed}


@pytest.mark.parametrize("service", ["auth", "users"])
def test_the_docs_page_renders_every_operation_from_the_service_alone(
    stack: Stack, gateway: httpx.Client, browser: BrowserContext, service: str
) -> None:
    expected = documented_operations(gateway, service)
    assert len(expected) >= 5
    page = browser.new_page()
    watched = watch(page)
    page.goto(f"{stack.url}/{service}/docs")
    assert listed_operations(page) == expected
    page.screenshot(path=SCREENSHOTS / f"{service}-docs.png", full_page=True)
    assert watched.problems == []
    elsewhere = [url for url in watched.requested if not url.startswith(f"{stack.url}/")]
    assert elsewhere == []
    page.close()


def test_authorize_signs_in_with_the_password_flow_and_try_it_out_sends_the_token(
    stack: Stack, gateway: httpx.Client, browser: BrowserContext
) -> None:
    email = f"docs-{uuid.uuid4().hex[:12]}@example.com"
    registered = gateway.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert registered.status_code == 201, registered.text
    page = browser.new_page()
    watched = watch(page)
    page.goto(f"{stack.url}/auth/docs")
    page.click("button.authorize")
    page.fill("#oauth_username", email)
    page.fill("#oauth_password", PASSWORD)
    page.click(".auth-btn-wrapper button.authorize")
    # The token endpoint said yes: the dialog offers to log out.
    page.locator(".auth-btn-wrapper button", has_text="Logout").wait_for()
    page.click(".auth-btn-wrapper button.btn-done")

    # Signing out everywhere needs the token: a 204 shows Swagger UI sent it.
    operation = page.locator("#operations-accounts-logout_all_auth_logout_all_post")
    operation.locator(".opblock-summary-control").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status")
    assert status.inner_text().strip() == "204"
    assert f"{stack.url}/auth/token" in watched.requested
    assert watched.problems == []
    page.close()
