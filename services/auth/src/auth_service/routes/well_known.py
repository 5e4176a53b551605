"""The key set (RFC 7517) and the discovery documents (OpenID Connect Discovery, RFC 8414)."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from auth_service.authorization import PROMPTS
from auth_service.client_auth import AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS
from auth_service.dependencies import IssuanceDep
from auth_service.grants import GRANT_TYPES, REVOKE_PATH, TOKEN_PATH
from auth_service.id_tokens import CLAIMS_SUPPORTED
from auth_service.introspection import INTROSPECT_PATH
from auth_service.jwk import ALGORITHM
from auth_service.key_store import SigningKeyStore
from auth_service.registration import ASSERTION_ALGORITHMS
from service_kit.openapi import RETRY_AFTER, RETRY_AFTER_SECONDS, problem_response
from service_kit.problems import problem

router = APIRouter(prefix="/.well-known", tags=["discovery"])

JWKS_PATH = "/.well-known/jwks.json"
AUTHORIZE_PATH = "/auth/authorize"
USERINFO_PATH = "/auth/userinfo"
LOGOUT_PATH = "/auth/logout"
# RFC 7517 registers application/jwk-set+json; stock clients expect plain JSON, as the
# large identity providers serve it.
JWKS_MEDIA_TYPE = "application/json"
_JWKS_SCHEMA = {
    "type": "object",
    "required": ["keys"],
    "properties": {
        "keys": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["kty", "kid", "use", "alg", "n", "e"],
                "properties": {
                    "kty": {"const": "RSA"},
                    "use": {"const": "sig"},
                    "alg": {"const": ALGORITHM},
                },
            },
        }
    },
}


@router.get(
    "/jwks.json",
    response_model=None,
    responses={
        200: {
            "description": "RFC 7517 key set",
            "headers": {"Cache-Control": {"required": True, "schema": {"type": "string"}}},
            "content": {JWKS_MEDIA_TYPE: {"schema": _JWKS_SCHEMA}},
        },
        304: {"description": "Not modified (`If-None-Match`)"},
        503: problem_response(
            503, "The key set is not loaded yet.", headers={RETRY_AFTER: RETRY_AFTER_SECONDS}
        ),
    },
)
async def jwks(request: Request) -> Response:
    """The public keys tokens are signed with, served from memory; cacheable, with an ETag.

    No dependencies (their resolution is most of a small route's cost): the body, the ETag
    and the headers are bytes and strings prepared when the keys were loaded.
    """
    keys: SigningKeyStore = request.app.state.issuance.keys
    if not keys.loaded:
        return problem(503, "The key set is not loaded yet.", headers={"Retry-After": "1"})
    if_none_match = request.headers.get("if-none-match")
    if if_none_match and keys.jwks_etag in _etags(if_none_match):
        return Response(status_code=304, headers=keys.jwks_headers)
    return Response(keys.jwks_body, media_type=JWKS_MEDIA_TYPE, headers=keys.jwks_headers)


def _etags(header: str) -> set[str]:
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return tags - {""}


def discovery_document(issuer: str, scopes: list[str]) -> dict[str, Any]:
    """RFC 8414 metadata; every URL absolute, built from the issuer (PUBLIC_URL)."""
    signing_algorithms = list(ASSERTION_ALGORITHMS)
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}{JWKS_PATH}",
        "token_endpoint": f"{issuer}{TOKEN_PATH}",
        "revocation_endpoint": f"{issuer}{REVOKE_PATH}",
        "introspection_endpoint": f"{issuer}{INTROSPECT_PATH}",
        "authorization_endpoint": f"{issuer}{AUTHORIZE_PATH}",
        "userinfo_endpoint": f"{issuer}{USERINFO_PATH}",
        "end_session_endpoint": f"{issuer}{LOGOUT_PATH}",
        "grant_types_supported": list(GRANT_TYPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": list(PROMPTS),
        "authorization_response_iss_parameter_supported": True,
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "subject_types_supported": ["public"],
        "claims_supported": list(CLAIMS_SUPPORTED),
        "scopes_supported": scopes,
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": signing_algorithms,
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_signing_alg_values_supported": signing_algorithms,
        # Introspection is for confidential clients only: `none` is not among its methods.
        "introspection_endpoint_auth_methods_supported": list(CONFIDENTIAL_AUTH_METHODS),
        "introspection_endpoint_auth_signing_alg_values_supported": signing_algorithms,
        # Access tokens are RFC 9068 JWTs signed with this algorithm only, as ID tokens are.
        "access_token_signing_alg_values_supported": [ALGORITHM],
        "service_documentation": f"{issuer}/auth/docs",
    }


def _discovery(issuance: IssuanceDep) -> JSONResponse:
    document = discovery_document(issuance.issuer.issuer, sorted(issuance.scopes))
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=3600"})


@router.get("/openid-configuration", response_model=None)
async def openid_configuration(issuance: IssuanceDep) -> JSONResponse:
    """OpenID Connect Discovery: `issuer` + this path is this document."""
    return _discovery(issuance)


@router.get("/oauth-authorization-server", response_model=None)
async def oauth_authorization_server(issuance: IssuanceDep) -> JSONResponse:
    """The same metadata at RFC 8414's well-known path."""
    return _discovery(issuance)
