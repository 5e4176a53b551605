"""Every service's HTTP middleware, in one order, so that each service is safe on its own."""

from fastapi import FastAPI

from service_kit.body_limit import BodySizeLimitMiddleware, Refusal
from service_kit.client_address import ClientAddressMiddleware
from service_kit.overload import ConcurrencyLimitMiddleware, Shedding
from service_kit.request_context import RequestContextMiddleware
from service_kit.security_headers import SecurityHeadersMiddleware


def install_middleware(
    app: FastAPI,
    *,
    max_body_bytes: int,
    trusted_proxies: str,
    public_url: str,
    docs_prefix: str,
    body_refusal: Refusal | None = None,
    max_concurrent_requests: int = 0,
    request_queue_timeout: float = 0,
    unlimited_paths: tuple[str, ...] = (),
    shedding: Shedding | None = None,
) -> None:
    """Outermost first: security headers (on every answer, the last-resort 500 included),
    the client's address, the request id and access log line, the concurrency limit (a shed
    request is still logged, with its id), then the body limit, which refuses an oversized
    body before routing, dependencies or authentication run."""
    # Each add_middleware wraps the ones added before it: innermost first.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes, refusal=body_refusal)
    app.add_middleware(
        ConcurrencyLimitMiddleware,
        max_concurrent=max_concurrent_requests,
        queue_timeout=request_queue_timeout,
        exempt_paths=unlimited_paths,
        shedding=shedding,
    )
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(ClientAddressMiddleware, trusted_proxies=trusted_proxies)
    app.add_middleware(SecurityHeadersMiddleware, docs_prefix=docs_prefix, public_url=public_url)
