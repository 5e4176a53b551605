"""The authorization endpoint's rules (RFC 6749 §4.1, RFC 7636, OpenID Connect Core §3.1.2),
without HTTP: which request is valid, and how each error is answered.

The order is OpenID Connect's: `client_id` and `redirect_uri` first; an error there is
shown to the person (a 400 page), never sent to a redirect URI that is not the client's.
Every later error goes back to the client's redirect URI with `error`,
`error_description`, `state` and `iss` (RFC 9207).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode, urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import clients
from auth_service.authorization_codes import well_formed_challenge
from auth_service.clients import RegisteredClient
from auth_service.oauth import OAuthError, parse_scope

PROMPTS = ("login", "none")
MAX_STATE_CHARS = 1024
MAX_NONCE_CHARS = 512
# What the sign-in form carries back, as hidden fields, to POST the same request.
REQUEST_FIELDS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
)


class AuthorizationPageError(Exception):
    """The client or its redirect URI is unknown: said on a page, never redirected."""


class AuthorizationRedirectError(Exception):
    """An error for the client, answered at its redirect URI (RFC 6749 §4.1.2.1)."""

    def __init__(self, request: "RedirectTarget", error: str, description: str) -> None:
        super().__init__(description)
        self.target = request
        self.error = error
        self.description = description

    def location(self, issuer: str) -> str:
        return self.target.location(
            issuer, {"error": self.error, "error_description": self.description}
        )


@dataclass(frozen=True)
class RedirectTarget:
    """Where a checked client's answers go: its redirect URI, with its `state`."""

    redirect_uri: str
    state: str | None

    def location(self, issuer: str, parameters: dict[str, str]) -> str:
        """The redirect URI with the answer's parameters, `state` and `iss` added."""
        query = dict(parameters)
        if self.state is not None:
            query["state"] = self.state
        query["iss"] = issuer
        separator = "&" if urlsplit(self.redirect_uri).query else "?"
        return f"{self.redirect_uri}{separator}{urlencode(query)}"


@dataclass(frozen=True)
class AuthorizationRequest:
    """A valid authorization request."""

    client: RegisteredClient
    target: RedirectTarget
    scope: str
    nonce: str | None
    code_challenge: str
    prompt: str | None

    def hidden_fields(self) -> dict[str, str]:
        """The request as the sign-in form posts it back (prompt left out: it was obeyed)."""
        fields = {
            "response_type": "code",
            "client_id": self.client.id,
            "redirect_uri": self.target.redirect_uri,
            "scope": self.scope,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
        }
        if self.target.state is not None:
            fields["state"] = self.target.state
        if self.nonce is not None:
            fields["nonce"] = self.nonce
        return fields


def single_values(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], set[str]]:
    """The parameters (empty ones count as absent, RFC 6749 §3.1) and those repeated."""
    values: dict[str, str] = {}
    repeated: set[str] = set()
    for name, value in pairs:
        if name in values:
            repeated.add(name)
        values[name] = value
    return {name: value for name, value in values.items() if value != ""}, repeated


async def check_request(
    db: AsyncSession,
    parameters: dict[str, str],
    repeated: set[str],
    *,
    scopes: frozenset[str],
    now: datetime,
) -> AuthorizationRequest:
    """The request, checked in OpenID Connect's order, or one of the two errors."""
    client_id = parameters.get("client_id")
    redirect_uri = parameters.get("redirect_uri")
    if client_id is None or redirect_uri is None or {"client_id", "redirect_uri"} & repeated:
        raise AuthorizationPageError("The request must name one client_id and one redirect_uri.")
    loaded = await clients.load(db, client_id, now)
    if loaded is None:
        raise AuthorizationPageError("The application that sent you here is not registered.")
    client = loaded[0]
    if redirect_uri not in client.redirect_uris:
        raise AuthorizationPageError(
            "The redirect address is not one registered for this application."
        )
    state = parameters.get("state")
    target = RedirectTarget(redirect_uri, state if "state" not in repeated else None)

    def refuse(error: str, description: str) -> AuthorizationRedirectError:
        return AuthorizationRedirectError(target, error, description)

    if repeated:
        raise refuse("invalid_request", f"Repeated parameter: {', '.join(sorted(repeated))}.")
    if state is not None and len(state) > MAX_STATE_CHARS:
        raise refuse("invalid_request", "The state is too long.")
    if "request" in parameters:
        raise refuse("request_not_supported", "Request objects are not supported.")
    if "request_uri" in parameters:
        raise refuse("request_uri_not_supported", "Request objects are not supported.")
    if parameters.get("response_type") != "code":
        raise refuse("unsupported_response_type", "The only response type is code.")
    if "authorization_code" not in client.grant_types:
        raise refuse(
            "unauthorized_client", "This client is not registered for the authorization_code grant."
        )
    if not client.first_party:
        # Another party's application would need the person's consent: no screen asks yet.
        raise refuse(
            "unauthorized_client", "Third-party clients need a consent screen, not available yet."
        )
    method = parameters.get("code_challenge_method")
    challenge = parameters.get("code_challenge")
    if challenge is None or method is None:
        raise refuse("invalid_request", "PKCE is required: code_challenge with method S256.")
    if method != "S256":
        raise refuse("invalid_request", "The only code_challenge_method is S256.")
    if not well_formed_challenge(challenge):
        raise refuse("invalid_request", "The code_challenge is not an S256 challenge.")
    try:
        scope = parse_scope(parameters.get("scope"), client.scopes & scopes)
    except OAuthError as exc:
        raise refuse(exc.error, exc.description) from None
    prompt = parameters.get("prompt")
    if prompt is not None and prompt not in PROMPTS:
        raise refuse("invalid_request", "The prompt is login or none.")
    nonce = parameters.get("nonce")
    if nonce is not None and len(nonce) > MAX_NONCE_CHARS:
        raise refuse("invalid_request", "The nonce is too long.")
    return AuthorizationRequest(client, target, scope, nonce, challenge, prompt)
