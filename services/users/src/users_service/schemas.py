"""What the profile endpoints accept and answer (docs/api.md, "Users service")."""

import unicodedata
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, AnyUrl, BaseModel, ConfigDict, Field, UrlConstraints

from users_service.models import AVATAR_URL_MAX_LENGTH, BIO_MAX_LENGTH, DISPLAY_NAME_MAX_LENGTH

_BIO_WHITESPACE = frozenset("\n\r\t")


def _storable(value: str, allowed_controls: frozenset[str] = frozenset()) -> str:
    # Control characters (NUL above all, which PostgreSQL refuses) and lone surrogates
    # (which no database encodes) are a 422 here rather than an error at the database.
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs") and char not in allowed_controls:
            raise ValueError("must not contain control characters")
    return value


def _bio(value: str) -> str:
    return _storable(value, _BIO_WHITESPACE)


def _avatar_url(url: AnyUrl) -> AnyUrl:
    if url.username or url.password:
        raise ValueError("must not carry credentials")
    # Normalising (an IDN host becomes punycode) can lengthen it; the column cannot.
    if len(str(url)) > AVATAR_URL_MAX_LENGTH:
        raise ValueError(f"must be at most {AVATAR_URL_MAX_LENGTH} characters")
    return url


DisplayName = Annotated[str, Field(max_length=DISPLAY_NAME_MAX_LENGTH), AfterValidator(_storable)]
Bio = Annotated[str, Field(max_length=BIO_MAX_LENGTH), AfterValidator(_bio)]
AvatarUrl = Annotated[
    AnyUrl,
    UrlConstraints(max_length=AVATAR_URL_MAX_LENGTH, allowed_schemes=["https"], host_required=True),
    AfterValidator(_avatar_url),
]


class PublicProfile(BaseModel):
    """The fields anyone signed in may see."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    display_name: str | None
    bio: str | None
    avatar_url: str | None


class FullProfile(PublicProfile):
    """A whole profile, as its owner and admins see it."""

    created_at: datetime
    updated_at: datetime


class ProfileUpdate(BaseModel):
    """A partial update: the fields sent are set (null clears one); nothing else is allowed."""

    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName | None = None
    bio: Bio | None = None
    avatar_url: AvatarUrl | None = None

    def changes(self) -> dict[str, str | None]:
        """The fields the client sent, as the values to store."""
        sent = self.model_dump(exclude_unset=True)
        if sent.get("avatar_url") is not None:
            sent["avatar_url"] = str(self.avatar_url)
        return sent


class ProfilePage(BaseModel):
    """One page of the admin listing; `next_cursor` is null on the last page."""

    items: list[FullProfile]
    next_cursor: str | None
