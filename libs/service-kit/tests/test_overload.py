"""Past MAX_CONCURRENT_REQUESTS in flight, a request waits for a slot at most
REQUEST_QUEUE_TIMEOUT_SECONDS, then is shed with 503 and Retry-After; the health probes never
are, and a slot is given back when a request ends, however it ends."""

import asyncio
import time

import pytest
from fastapi import APIRouter, HTTPException

from testsupport.example_service import UNREACHABLE_DATABASE, example_client

pytestmark = pytest.mark.anyio


def slow_routes(release: asyncio.Event) -> APIRouter:
    """`/slow` answers once `release` is set; `/fails` is a 404."""
    router = APIRouter()

    @router.get("/slow")
    async def wait_for_release() -> dict[str, str]:
        await release.wait()
        return {"done": "yes"}

    @router.get("/fails")
    async def fails() -> None:
        raise HTTPException(404, "nothing here")

    return router


async def test_requests_past_the_limit_are_shed_after_the_queue_timeout_with_503() -> None:
    release = asyncio.Event()
    async with example_client(
        UNREACHABLE_DATABASE,
        routers=[slow_routes(release)],
        max_concurrent_requests=2,
        request_queue_timeout_seconds=0.1,
    ) as client:
        held = [asyncio.create_task(client.get("/example/slow")) for _ in range(2)]
        await asyncio.sleep(0.05)  # both admitted and waiting

        started = time.monotonic()
        shed = await client.get("/example/slow")
        assert 0.1 <= time.monotonic() - started < 1  # shed after the wait, not the others
        assert shed.status_code == 503
        assert shed.headers["retry-after"] == "1"
        assert shed.headers["content-type"] == "application/problem+json"
        assert shed.json()["status"] == 503
        assert shed.headers["x-request-id"]
        assert (await client.get("/example/health")).status_code == 200

        release.set()
        assert [(await task).status_code for task in held] == [200, 200]
        # The slots are free again, after successes and errors alike.
        assert (await client.get("/example/fails")).status_code == 404
        assert (await client.get("/example/slow")).status_code == 200


async def test_a_request_waiting_in_the_queue_gets_the_next_free_slot() -> None:
    release = asyncio.Event()
    async with example_client(
        UNREACHABLE_DATABASE,
        routers=[slow_routes(release)],
        max_concurrent_requests=1,
        request_queue_timeout_seconds=5,
    ) as client:
        held = asyncio.create_task(client.get("/example/slow"))
        await asyncio.sleep(0.05)
        waiting = asyncio.create_task(client.get("/example/slow"))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        release.set()
        assert (await held).status_code == 200
        assert (await waiting).status_code == 200


async def test_a_limit_of_zero_sheds_nothing() -> None:
    release = asyncio.Event()
    async with example_client(
        UNREACHABLE_DATABASE, routers=[slow_routes(release)], max_concurrent_requests=0
    ) as client:
        held = [asyncio.create_task(client.get("/example/slow")) for _ in range(50)]
        await asyncio.sleep(0.05)
        release.set()
        assert {(await task).status_code for task in held} == {200}


async def test_every_operation_but_the_probes_documents_the_503() -> None:
    async with example_client(
        UNREACHABLE_DATABASE, routers=[slow_routes(asyncio.Event())]
    ) as client:
        paths = (await client.get("/example/openapi.json")).json()["paths"]
    assert "Retry-After" in paths["/example/slow"]["get"]["responses"]["503"]["headers"]
    assert "503" not in paths["/example/health"]["get"]["responses"]
