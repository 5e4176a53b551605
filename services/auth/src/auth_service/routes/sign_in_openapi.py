"""How the OpenAPI document describes the authorization endpoint, its sign-in page,
userinfo and logout: their parameters are read by hand (strictly, in OpenID Connect's
order), so they are declared here, and their pages are `text/html`."""

from typing import Any

from auth_service.authorization import MAX_NONCE_CHARS, MAX_STATE_CHARS
from auth_service.oauth import FORM_MEDIA_TYPE
from service_kit.openapi import (
    RETRY_AFTER,
    RETRY_AFTER_SECONDS,
    SCOPE_CHALLENGE,
    WWW_AUTHENTICATE,
    problem_content,
)

_HTML = {"text/html": {"schema": {"type": "string"}}}
_LOCATION = {"Location": {"required": True, "schema": {"type": "string"}}}


def _page(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": _HTML}
    if headers:
        answer["headers"] = headers
    return answer


def _string(description: str, **schema: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **schema}


_REQUEST_PROPERTIES: dict[str, Any] = {
    "response_type": _string("`code`", enum=["code"]),
    "client_id": _string("a registered client with the authorization_code grant"),
    "redirect_uri": _string("exactly one of the client's registered redirect URIs"),
    "scope": _string("space-separated; `openid` for an ID token; default: all the client's"),
    "state": _string("returned as it was sent", maxLength=MAX_STATE_CHARS),
    "nonce": _string("copied into the ID token", maxLength=MAX_NONCE_CHARS),
    "code_challenge": _string("RFC 7636: BASE64URL(SHA256(code_verifier))"),
    "code_challenge_method": _string("`S256` (required; `plain` is refused)", enum=["S256"]),
}
_REDIRECT = {
    "description": (
        "Back to the client's redirect URI (303): `code`, `state` and `iss` (RFC 9207) on "
        "success; `error`, `error_description`, `state` and `iss` on a refusal after the "
        "client and redirect URI were checked (`login_required` for `prompt=none` without "
        "a sign-in session)"
    ),
    "headers": _LOCATION,
}
_REFUSED_PAGE = _page(
    "A page, never a redirect: the client is unknown or the redirect URI is not one of its "
    "registered ones (or, for the form, the request or its CSRF token is not valid)"
)

AUTHORIZE_GET: dict[str, Any] = {
    "openapi_extra": {
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": schema}
            for name, schema in {
                **_REQUEST_PROPERTIES,
                "prompt": _string(
                    "`login` forces the page; `none` never shows it", enum=["login", "none"]
                ),
            }.items()
        ]
    },
    "responses": {
        200: _page("The sign-in page: one form posting `username` and `password`"),
        303: _REDIRECT,
        400: _REFUSED_PAGE,
    },
}

AUTHORIZE_POST: dict[str, Any] = {
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "content": {
                FORM_MEDIA_TYPE: {
                    "schema": {
                        "type": "object",
                        "required": ["client_id", "redirect_uri", "username", "password"],
                        "properties": {
                            **_REQUEST_PROPERTIES,
                            "username": _string("the email or the username"),
                            "password": _string("the password", format="password"),
                            "csrf_token": _string("the page's hidden CSRF token"),
                        },
                    }
                }
            },
        }
    },
    "responses": {
        200: _page("The sign-in page again"),
        303: _REDIRECT,
        400: _page(
            "The page again, saying what went wrong (wrong and unknown logins alike, an "
            "expired form); or the refusal page"
        ),
        413: {"description": "The body is over the limit", "content": problem_content()},
        429: _page(
            "The page again: too many failed sign-ins (the token endpoint's throttle)",
            {RETRY_AFTER: RETRY_AFTER_SECONDS},
        ),
    },
}

USERINFO_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "OpenID Connect Core §5.3: the claims the token's scopes allow",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["sub"],
                    "properties": {
                        "sub": {"type": "string"},
                        "email": {"type": "string"},
                        "email_verified": {"type": "boolean"},
                        "preferred_username": {"type": "string"},
                    },
                }
            }
        },
    },
    403: {
        "description": "The access token lacks scope `openid`",
        "content": problem_content(),
        "headers": {WWW_AUTHENTICATE: SCOPE_CHALLENGE},
    },
}

LOGOUT: dict[str, Any] = {
    "openapi_extra": {
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": _string(description)}
            for name, description in {
                "id_token_hint": "an ID token this service issued (expired ones too)",
                "client_id": "the client, which must be the ID token's audience",
                "post_logout_redirect_uri": "one of the client's registered redirect URIs",
                "state": "returned as it was sent",
            }.items()
        ]
    },
    "responses": {
        200: _page("Signed out (no valid redirect was asked for)"),
        303: {
            "description": "Signed out, back to `post_logout_redirect_uri` with `state`",
            "headers": _LOCATION,
        },
    },
}
