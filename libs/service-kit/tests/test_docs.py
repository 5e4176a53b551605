"""Swagger UI served by the service itself, under its prefix, with no inline script."""

import re

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from service_kit.docs import install_docs
from service_kit.problems import install_problem_handlers

pytestmark = pytest.mark.anyio


def _client() -> AsyncClient:
    app = FastAPI(title="Kit", docs_url=None, openapi_url="/kit/openapi.json")
    install_problem_handlers(app)
    install_docs(app, "/kit")

    @app.get("/kit/{item}")
    async def item(item: str) -> dict[str, str]:
        return {"item": item}

    return AsyncClient(transport=ASGITransport(app), base_url="http://kit.test")


async def test_the_page_loads_only_script_files_of_the_service() -> None:
    async with _client() as client:
        response = await client.get("/kit/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    scripts = re.findall(r"<script([^>]*)>", response.text)
    assert scripts == [
        ' src="/kit/docs/swagger-ui-bundle.js"',
        ' src="/kit/docs/swagger-initializer.js"',
    ]
    assert re.findall(r'(?:href|src)="([^"]+)"', response.text) == [
        "/kit/docs/favicon.png",
        "/kit/docs/swagger-ui.css",
        "/kit/docs/swagger-ui-bundle.js",
        "/kit/docs/swagger-initializer.js",
    ]


@pytest.mark.parametrize(
    ("path", "media_type", "marker"),
    [
        ("/kit/docs/swagger-ui-bundle.js", "text/javascript", b"SwaggerUIBundle"),
        ("/kit/docs/swagger-ui.css", "text/css", b".swagger-ui"),
        ("/kit/docs/favicon.png", "image/png", b"\x89PNG"),
    ],
)
async def test_swagger_uis_files_come_from_the_package_revalidated_by_etag(
    path: str, media_type: str, marker: bytes
) -> None:
    async with _client() as client:
        response = await client.get(path)
        again = await client.get(path, headers={"If-None-Match": response.headers["etag"]})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert marker in response.content[:200_000]
    assert response.headers["cache-control"] == "no-cache"
    assert (again.status_code, again.content) == (304, b"")


async def test_the_initializer_starts_swagger_ui_on_the_services_document() -> None:
    async with _client() as client:
        response = await client.get("/kit/docs/swagger-initializer.js")
    assert response.headers["content-type"].startswith("text/javascript")
    script = response.text
    assert '"url": "/kit/openapi.json"' in script
    assert '"oauth2RedirectUrl": "/kit/docs/oauth2-redirect"' in script
    assert '"validatorUrl": null' in script  # no document sent to a public validator


async def test_the_oauth2_redirect_lives_under_the_prefix_and_its_script_is_a_file() -> None:
    async with _client() as client:
        page = await client.get("/kit/docs/oauth2-redirect")
        script = await client.get("/kit/docs/oauth2-redirect.js")
        outside = await client.get("/docs/oauth2-redirect")
    assert page.status_code == 200
    assert re.findall(r"<script([^>]*)>", page.text) == [' src="/kit/docs/oauth2-redirect.js"']
    assert "swaggerUIRedirectOauth2" in script.text
    assert "<script" not in script.text
    assert outside.status_code == 404


async def test_an_app_without_a_document_has_no_docs_to_serve() -> None:
    with pytest.raises(ValueError, match="no OpenAPI document"):
        install_docs(FastAPI(openapi_url=None, docs_url=None), "/kit")
