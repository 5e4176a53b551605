"""What the sign-in tests share: PKCE pairs, authorization URLs, and reading the sign-in
page's form as a browser would (its hidden fields, the CSRF token among them)."""

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> "Pkce":
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))


@dataclass
class AuthorizationRequest:
    """One authorization request's parameters and the secrets the client keeps."""

    client_id: str
    redirect_uri: str
    scope: str = "openid email profile"
    pkce: Pkce = field(default_factory=Pkce.new)
    state: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(12))

    def parameters(self, **overrides: str | None) -> dict[str, str]:
        parameters: dict[str, str | None] = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.pkce.challenge,
            "code_challenge_method": "S256",
            **overrides,
        }
        return {name: value for name, value in parameters.items() if value is not None}

    def url(self, base: str = "", /, **overrides: str | None) -> str:
        return f"{base}/auth/authorize?{urlencode(self.parameters(**overrides))}"

    def token_form(self, code: str, **overrides: str) -> dict[str, str]:
        return {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": self.pkce.verifier,
            "client_id": self.client_id,
            **overrides,
        }


class _FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, str]] = []
        self.inputs: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(values)
        elif tag == "input":
            self.inputs.append(values)


def sign_in_form(html: str) -> dict[str, str]:
    """The page's one POST form's fields: hidden ones with their values, visible ones empty."""
    reader = _FormReader()
    reader.feed(html)
    assert len(reader.forms) == 1, "the page has one form"
    assert reader.forms[0].get("method", "").lower() == "post"
    return {item["name"]: item.get("value", "") for item in reader.inputs if "name" in item}


def redirect_parameters(location: str) -> dict[str, str]:
    """The query parameters of a redirect back to the client, one value each."""
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}
