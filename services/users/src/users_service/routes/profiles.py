"""Profile endpoints: thin, each parses, calls one function of `profiles`, shapes the answer.

Each answer is validated once into its schema and serialised once to bytes: a `Response` is
returned as is, so `response_model` only documents it (FastAPI would validate it again).
"""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel
from starlette.convertors import StringConvertor, register_url_convertor

from service_kit.db import DatabaseDep, DbSession
from service_kit.openapi import problem_response
from users_service import profiles
from users_service.dependencies import (
    CurrentAccount,
    ProfileCacheDep,
    ProfileLister,
    ProfileReader,
)
from users_service.schemas import FullProfile, ProfilePage, ProfileUpdate, PublicProfile

router = APIRouter(tags=["profiles"])


class ProfileIdConvertor(StringConvertor):
    """A path segment that may be a profile id: any but the service's own fixed paths, so
    that `GET /users/events` is a 405 naming POST alone, not a 422 for a bad profile id."""

    regex = "(?!events$)[^/]+"


register_url_convertor("profile_id", ProfileIdConvertor())

# Profiles are personal: no shared cache may keep them.
NO_STORE = {"Cache-Control": "no-store"}


def _answer(body: BaseModel) -> Response:
    return Response(body.model_dump_json(), media_type="application/json", headers=NO_STORE)


# A service's own token (client_credentials) has no profile.
_NOT_A_PERSON: dict[int | str, dict[str, Any]] = {
    403: problem_response(403, "A service's token: it has no profile.", headers={})
}


@router.get("/me", response_model=FullProfile, responses=_NOT_A_PERSON)
async def read_my_profile(
    account: CurrentAccount, database: DatabaseDep, cache: ProfileCacheDep
) -> Response:
    """The caller's profile, created empty on first use. A person's token only: a service's
    own token (`client_credentials`) has no profile, and gets 403."""
    body = await profiles.my_profile_answer(database, cache, account)
    return Response(body, media_type="application/json", headers=NO_STORE)


@router.patch("/me", response_model=FullProfile, responses=_NOT_A_PERSON)
async def update_my_profile(
    changes: ProfileUpdate, account: CurrentAccount, db: DbSession, cache: ProfileCacheDep
) -> Response:
    """Set the fields sent; unknown fields and invalid values are a 422 that changes nothing.
    A person's token only (403 for a service's)."""
    profile = await profiles.update_profile(db, account, changes.changes(), cache)
    return _answer(FullProfile.model_validate(profile))


@router.get(
    "/{profile_id:profile_id}",
    response_model=PublicProfile,
    responses={
        403: problem_response(403, "A service's token without the `users:read` scope."),
        404: problem_response(404, "There is no profile with this id."),
    },
)
async def read_profile(
    profile_id: uuid.UUID, _reader: ProfileReader, database: DatabaseDep
) -> Response:
    """Anyone's public fields; 404 when there is no such profile. Any person may read them; a
    service's token needs the `users:read` scope."""
    row = await database.run(profiles.read_profile, profile_id)
    if row is None:
        raise HTTPException(404, "There is no profile with this id.")
    return _answer(PublicProfile.model_validate(row))


@router.get(
    "",
    response_model=ProfilePage,
    responses={
        403: problem_response(403, "Neither the `users:read` scope nor the `admin` role."),
        422: problem_response(422, "An invalid `limit`, or a `cursor` this listing did not give."),
    },
)
async def list_profiles(
    _lister: ProfileLister,
    db: DbSession,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> Response:
    """A page of every profile, oldest first: for a token with the `users:read` scope (a
    service's, say) or a person with the `admin` role."""
    try:
        page, next_cursor = await profiles.list_profiles(db, limit, cursor)
    except profiles.InvalidCursorError:
        raise HTTPException(422, "Invalid request: cursor") from None
    items = [FullProfile.model_validate(profile) for profile in page]
    return _answer(ProfilePage(items=items, next_cursor=next_cursor))
