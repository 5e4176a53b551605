"""Liveness and readiness, as the gateway, compose and ECS probe them."""

import asyncio

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from auth_client import JwksClient
from service_kit.openapi import problem_response
from service_kit.problems import problem

READINESS_TIMEOUT_SECONDS = 2.0

router = APIRouter(tags=["health"])
log = structlog.stdlib.get_logger(__name__)


@router.get("/health")
async def health() -> dict[str, str]:
    """Alive: answers without touching the database."""
    return {"status": "ok"}


@router.get(
    "/ready",
    response_model=None,
    responses={
        503: problem_response(
            503, "Not ready: the database is not reachable, or no key set is loaded yet."
        )
    },
)
async def ready(request: Request) -> Response:
    """Ready: 200 only when the database answers and a key set from the auth service is held."""
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            await request.app.state.database.ping()
    except Exception as exc:  # any failure to reach the database means "not ready"
        log.warning("database_unreachable", error=type(exc).__name__)
        return problem(503, "The database is not reachable.")
    jwks: JwksClient = request.app.state.jwks
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            keys_held = await jwks.load()
    except TimeoutError:
        keys_held = False
    if not keys_held:
        return problem(503, "No signing keys have been loaded from the auth service yet.")
    return JSONResponse({"status": "ready"})
