"""The platform's client library: trust its access tokens, and get tokens of your own.

Resource servers verify access tokens (`JwksClient`, `TokenVerifier`, and the FastAPI
dependencies in `auth_client.fastapi`); callers get `client_credentials` tokens with
`ClientCredentialsAuth`. Nothing here knows any service of the platform but by its URLs.
"""

from auth_client.client_credentials import ClientCredentialsAuth, TokenEndpointError
from auth_client.deny_list import DenyList
from auth_client.jwks import JwksClient, JwksError
from auth_client.principal import Principal
from auth_client.revocation_events import (
    InvalidEventError,
    Revocation,
    apply_event,
    revocation_of,
)
from auth_client.token_cache import VerifiedTokenCache
from auth_client.tokens import (
    InvalidAccessTokenError,
    KeySource,
    TokenPolicy,
    TokenVerifier,
    verify_access_token,
)

__all__ = [
    "ClientCredentialsAuth",
    "DenyList",
    "InvalidAccessTokenError",
    "InvalidEventError",
    "JwksClient",
    "JwksError",
    "KeySource",
    "Principal",
    "Revocation",
    "TokenEndpointError",
    "TokenPolicy",
    "TokenVerifier",
    "VerifiedTokenCache",
    "apply_event",
    "revocation_of",
    "verify_access_token",
]
