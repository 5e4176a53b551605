"""Liveness and readiness, as the gateway, compose and ECS probe them.

`/health` answers without touching anything: the process is alive. `/ready` runs the
service's readiness checks (the database first, then the service's own) and is a 503 problem
naming the first that fails, so a load balancer sends traffic only where it can be served.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from service_kit.db import Database
from service_kit.openapi import problem_response
from service_kit.problems import problem

READINESS_TIMEOUT_SECONDS = 2.0

log = structlog.stdlib.get_logger(__name__)


@dataclass(frozen=True)
class ReadinessCheck:
    """One condition of readiness.

    `probe` answers whether it holds; raising or taking longer than the timeout counts as
    "no". `condition` completes "ready when …" in the docs; `failure` is the 503's detail.
    """

    name: str
    condition: str
    failure: str
    probe: Callable[[Request], Awaitable[bool]]


async def _database_answers(request: Request) -> bool:
    database: Database = request.app.state.database
    await database.ping()
    return True


DATABASE_ANSWERS = ReadinessCheck(
    name="database",
    condition="the database answers",
    failure="The database is not reachable.",
    probe=_database_answers,
)


async def _holds(check: ReadinessCheck, request: Request) -> bool:
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            return await check.probe(request)
    except Exception as exc:  # whatever stops a check from answering means "not ready"
        log.warning("not_ready", check=check.name, error=type(exc).__name__)
        return False


async def health() -> dict[str, str]:
    return {"status": "ok"}


def health_router(checks: Sequence[ReadinessCheck]) -> APIRouter:
    """`GET /health` and `GET /ready`, the latter ready when every check holds, in order."""

    async def ready(request: Request) -> Response:
        for check in checks:
            if not await _holds(check, request):
                return problem(503, check.failure)
        return JSONResponse({"status": "ready"})

    conditions = " and ".join(check.condition for check in checks) or "the process runs"
    router = APIRouter(tags=["health"])
    router.add_api_route(
        "/health", health, description="Alive: answers without touching the database."
    )
    router.add_api_route(
        "/ready",
        ready,
        response_model=None,
        description=f"Ready: 200 only when {conditions}, each within "
        f"{READINESS_TIMEOUT_SECONDS:g} seconds.",
        responses={503: problem_response(503, "Not ready: the problem says which check failed.")},
    )
    return router
