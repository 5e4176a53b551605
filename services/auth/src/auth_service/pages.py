"""The HTML pages the auth service serves (the sign-in page, its errors, signed out):
Jinja2 templates with autoescaping, one inline stylesheet allowed by its hash, no script
and nothing from another site.

Each page carries its own Content-Security-Policy, which the service's and the gateway's
security headers leave in place: `form-action` must name where the sign-in form's answer
redirects to (browsers check a form's redirects against it), so it names that client's
redirect URI's origin besides the page's own.
"""

import base64
import functools
import hashlib
from importlib.resources import files
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from fastapi.responses import HTMLResponse

from auth_service.oauth import NO_STORE

if TYPE_CHECKING:
    from jinja2 import Environment


@functools.cache
def _environment() -> "Environment":
    # Jinja2 is imported by the first page served, not at start: a process that never shows
    # one (an API-only deployment) keeps its ~1.5 MB.
    from jinja2 import Environment, PackageLoader, select_autoescape

    return Environment(
        loader=PackageLoader("auth_service", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        auto_reload=False,
    )


CSS = files("auth_service").joinpath("templates/page.css").read_text(encoding="utf-8")
_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode("utf-8")).digest()).decode("ascii")
HTML_MEDIA_TYPE = "text/html"


def content_security_policy(form_target: str | None = None) -> str:
    """No script, no frame, no other site; the stylesheet by hash; the form posts here only
    (and may redirect to `form_target`'s origin)."""
    form_action = "'self'"
    if form_target is not None:
        parts = urlsplit(form_target)
        form_action += f" {parts.scheme}://{parts.netloc}"
    return (
        f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; form-action {form_action}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


def render(
    template: str,
    *,
    status: int = 200,
    form_target: str | None = None,
    headers: dict[str, str] | None = None,
    **context: object,
) -> HTMLResponse:
    """A page, never cached (it may show a person's input or a CSRF token)."""
    body = _environment().get_template(template).render(css=CSS, **context)
    return HTMLResponse(
        body,
        status_code=status,
        headers={
            **NO_STORE,
            "Content-Security-Policy": content_security_policy(form_target),
            **(headers or {}),
        },
    )


def message_page(title: str, message: str, status: int = 200) -> HTMLResponse:
    return render("message.html", status=status, title=title, message=message)
