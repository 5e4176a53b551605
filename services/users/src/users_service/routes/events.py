"""`POST /users/events`: the auth service's publisher delivers its events here."""

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request, Response

from auth_client.revocation_events import InvalidEventError
from service_kit.db import DbSession
from service_kit.openapi import problem_response
from users_service import events
from users_service.dependencies import EventPublisher
from users_service.revocations import DenyListFeed
from users_service.schemas import EventBatch
from users_service.settings import Settings

router = APIRouter(tags=["events"])


@router.post(
    "/events",
    status_code=204,
    responses={
        403: problem_response(403, "A token without the `events:publish` scope, or a person's."),
        422: problem_response(422, "An event without the fields its type needs."),
    },
)
async def receive_events(
    batch: EventBatch, _publisher: EventPublisher, db: DbSession, request: Request
) -> Response:
    """Apply a batch of the auth service's events, in order; each once, however often it
    is delivered (204 means every event of the batch is applied). The deletion of an account
    removes its profile; its disabling, its deletion and a session's revocation make the
    service refuse the matching access tokens, on every replica within seconds."""
    settings: Settings = request.app.state.settings
    feed: DenyListFeed = request.app.state.deny_list_feed
    try:
        applied = await events.consume(
            db,
            [event.model_dump(mode="json") for event in batch.events],
            max_token_lifetime_seconds=settings.max_token_lifetime_seconds,
            now=datetime.now(UTC),
        )
    except InvalidEventError as exc:
        raise HTTPException(422, str(exc)) from None
    feed.apply_now(applied)
    return Response(status_code=204)
