"""The API security headers, set by the service itself.

The gateway sets the same headers (gateway/dynamic.yml); a service deployed without it (App
Runner, ECS Express Mode, Lambda) still sends them. Behind the gateway nothing doubles:
Traefik's headers middleware replaces a header the service set rather than adding a line.
"""

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# Swagger UI, served by the service itself (service_kit.docs): scripts are its files only;
# its components set inline styles, and its stylesheet draws icons from data: URLs.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
STRICT_TRANSPORT_SECURITY = "max-age=31536000; includeSubDomains"

_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def security_headers(*, docs: bool, https: bool) -> dict[str, str]:
    """The headers of one response: the API's, or the docs page's policy that lets Swagger
    UI load; HSTS only when the service is reached over HTTPS (its PUBLIC_URL)."""
    headers = dict(_COMMON_HEADERS)
    if docs:
        headers["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
    else:
        headers["Content-Security-Policy"] = API_CONTENT_SECURITY_POLICY
        # Swagger UI's OAuth popup must keep its opener; the API has none to keep.
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if https:
        headers["Strict-Transport-Security"] = STRICT_TRANSPORT_SECURITY
    return headers


class SecurityHeadersMiddleware:
    """Set the security headers on every HTTP response, the service's own errors included;
    a response that sets its own Content-Security-Policy (a page) keeps it.

    `docs_prefix` is where the service's API docs live (`/auth/docs`); `public_url` is its
    PUBLIC_URL: an https one turns on Strict-Transport-Security.
    """

    def __init__(self, app: ASGIApp, *, docs_prefix: str, public_url: str) -> None:
        self.app = app
        self.docs_prefix = docs_prefix
        https = public_url.lower().startswith("https://")
        self.api_headers = security_headers(docs=False, https=https)
        self.docs_headers = security_headers(docs=True, https=https)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        is_docs = path == self.docs_prefix or path.startswith(f"{self.docs_prefix}/")
        chosen = self.docs_headers if is_docs else self.api_headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                # An HTML page the service renders brings its own policy (its form's
                # targets); every other response gets the API's.
                own_policy = "content-security-policy" in headers
                for name, value in chosen.items():
                    if own_policy and name == "Content-Security-Policy":
                        continue
                    headers[name] = value  # replaces, never a second line
            await send(message)

        await self.app(scope, receive, send_with_headers)
