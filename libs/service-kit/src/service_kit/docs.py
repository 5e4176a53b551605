"""Swagger UI, served by the service itself: no CDN, no inline script.

FastAPI's own docs page loads Swagger UI's script and styles from a public CDN, so a browser
without internet access shows a blank page, and the page's policy has to let a third party's
script run. Here the assets come from the `fastapi-swagger` package (Swagger UI's release
files, unmodified) and every script is a file of this service, so the docs policy
(service_kit.security_headers) allows scripts from 'self' only.

Everything lives under `<prefix>/docs`, the path the gateway routes to the service with the
docs policy:

    <prefix>/docs                         the page
    <prefix>/docs/swagger-ui-bundle.js    Swagger UI (also swagger-ui.css, favicon.png)
    <prefix>/docs/swagger-initializer.js  starts Swagger UI on this service's document
    <prefix>/docs/oauth2-redirect         where an OAuth 2 authorization sends the browser back
"""

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from html import escape
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response

SWAGGER_UI_RESOURCES = "fastapi_swagger.resources"
# The files served, by URL name: (file in the package, media type).
_ASSETS = {
    "swagger-ui-bundle.js": ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "swagger-ui.css": ("swagger-ui.css", "text/css; charset=utf-8"),
    "favicon.png": ("favicon-32x32.png", "image/png"),
}
# Revalidated on each load (a 304 when unchanged), so an upgraded package is seen at once.
_ASSET_CACHE_CONTROL = "no-cache"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" type="image/png" href="{docs}/favicon.png">
<link rel="stylesheet" href="{docs}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{docs}/swagger-ui-bundle.js"></script>
<script src="{docs}/swagger-initializer.js"></script>
</body>
</html>
"""
_REDIRECT_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Swagger UI: OAuth2 Redirect</title></head>
<body><script src="{docs}/oauth2-redirect.js"></script></body>
</html>
"""


@dataclass(frozen=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


@cache
def _asset(name: str) -> _Asset:
    filename, media_type = _ASSETS[name]
    body = resources.files(SWAGGER_UI_RESOURCES).joinpath(filename).read_bytes()
    return _Asset(body, media_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"')


@cache
def oauth2_redirect_script() -> str:
    """The script of FastAPI's OAuth 2 redirect page (Swagger UI's), as a file of its own."""
    page = bytes(get_swagger_ui_oauth2_redirect_html().body).decode()
    match = re.search(r"<script>(.*)</script>", page, re.DOTALL)
    if match is None:
        raise RuntimeError("FastAPI's OAuth 2 redirect page has no script")
    return match.group(1).strip() + "\n"


def swagger_ui_config(openapi_url: str, docs_path: str) -> dict[str, Any]:
    """What SwaggerUIBundle is started with (besides its presets, which are functions)."""
    return {
        "url": openapi_url,
        "dom_id": "#swagger-ui",
        "layout": "BaseLayout",
        "deepLinking": True,
        "showExtensions": True,
        "showCommonExtensions": True,
        # Swagger UI would otherwise send the document's URL to a public validator.
        "validatorUrl": None,
        # A path: the initializer makes it absolute with the page's own origin.
        "oauth2RedirectUrl": f"{docs_path}/oauth2-redirect",
    }


_INITIALIZER = """const config = {config};
config.oauth2RedirectUrl = window.location.origin + config.oauth2RedirectUrl;
config.presets = [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset];
window.ui = SwaggerUIBundle(config);
"""


def _initializer(config: dict[str, Any]) -> str:
    return _INITIALIZER.format(config=json.dumps(config))


def _asset_endpoint(name: str) -> Callable[[Request], Awaitable[Response]]:
    async def asset(request: Request) -> Response:
        served = _asset(name)
        headers = {"ETag": served.etag, "Cache-Control": _ASSET_CACHE_CONTROL}
        if request.headers.get("if-none-match") == served.etag:
            return Response(status_code=304, headers=headers)
        return Response(served.body, media_type=served.media_type, headers=headers)

    return asset


def install_docs(app: FastAPI, prefix: str) -> None:
    """Serve Swagger UI at `<prefix>/docs` for the app's document (`app.openapi_url`).

    Create the app with `docs_url=None` (FastAPI's CDN page, and its OAuth 2 redirect at
    `/docs/oauth2-redirect`, outside the service's prefix, would otherwise be added too),
    and call this before adding the service's routes: the first route that matches a path
    answers it, and `<prefix>/{id}` would take `<prefix>/docs`.
    """
    if app.openapi_url is None:
        raise ValueError("the app has no OpenAPI document to show")
    docs = f"{prefix}/docs"
    page = _PAGE.format(title=escape(f"{app.title} - Swagger UI"), docs=docs)
    config = swagger_ui_config(app.openapi_url, docs)
    initializer = _initializer(config)
    redirect_page = _REDIRECT_PAGE.format(docs=docs)

    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(page)

    async def swagger_initializer() -> Response:
        return Response(initializer, media_type="text/javascript; charset=utf-8")

    async def oauth2_redirect() -> HTMLResponse:
        return HTMLResponse(redirect_page)

    async def oauth2_redirect_js() -> Response:
        return Response(oauth2_redirect_script(), media_type="text/javascript; charset=utf-8")

    app.add_api_route(docs, swagger_ui, include_in_schema=False)
    app.add_api_route(
        f"{docs}/swagger-initializer.js", swagger_initializer, include_in_schema=False
    )
    app.add_api_route(f"{docs}/oauth2-redirect", oauth2_redirect, include_in_schema=False)
    app.add_api_route(f"{docs}/oauth2-redirect.js", oauth2_redirect_js, include_in_schema=False)
    for name in _ASSETS:
        app.add_api_route(f"{docs}/{name}", _asset_endpoint(name), include_in_schema=False)
