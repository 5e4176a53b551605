"""Profile endpoints: thin, each parses, calls one function of `profiles`, shapes the answer."""

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

from users_service import profiles
from users_service.db import Session
from users_service.dependencies import Admin, CurrentUser
from users_service.schemas import Profile, ProfilePage, ProfileUpdate, PublicProfile

router = APIRouter(tags=["profiles"])

# Profiles are personal: no shared cache may keep them.
NO_STORE = {"Cache-Control": "no-store"}


@router.get("/me", response_model=Profile)
async def read_my_profile(user: CurrentUser, session: Session, response: Response) -> Profile:
    """The caller's profile, created empty on first use."""
    response.headers.update(NO_STORE)
    profile = await profiles.get_or_create_profile(session, user.subject)
    return Profile.model_validate(profile)


@router.patch("/me", response_model=Profile)
async def update_my_profile(
    changes: ProfileUpdate, user: CurrentUser, session: Session, response: Response
) -> Profile:
    """Set the fields sent; unknown fields and invalid values are a 422 that changes nothing."""
    response.headers.update(NO_STORE)
    profile = await profiles.update_profile(session, user.subject, changes.changes())
    return Profile.model_validate(profile)


@router.get("/{profile_id}", response_model=PublicProfile)
async def read_profile(
    profile_id: uuid.UUID, _user: CurrentUser, session: Session, response: Response
) -> PublicProfile:
    """Anyone's public fields; 404 when there is no such profile."""
    response.headers.update(NO_STORE)
    profile = await profiles.get_profile(session, profile_id)
    if profile is None:
        raise HTTPException(404, "There is no profile with this id.")
    return PublicProfile.model_validate(profile)


@router.get("", response_model=ProfilePage)
async def list_profiles(
    _admin: Admin,
    session: Session,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> ProfilePage:
    """A page of every profile, oldest first (admin role only)."""
    response.headers.update(NO_STORE)
    try:
        page, next_cursor = await profiles.list_profiles(session, limit, cursor)
    except profiles.InvalidCursorError:
        raise HTTPException(422, "Invalid request: cursor") from None
    return ProfilePage(
        items=[Profile.model_validate(profile) for profile in page], next_cursor=next_cursor
    )
