"""What the profile endpoints accept and answer (docs/api.md, "Users service")."""

import unicodedata
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AnyUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    UrlConstraints,
)

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


# The URL is stored normalised, which can lengthen it: `/` for an empty path, a numeric host
# written out (`https://1` is `https://0.0.0.1/`). A client is held to a shorter limit than
# the column, so that a URL at the documented limit still fits once normalised.
AVATAR_URL_SENT_MAX_LENGTH = AVATAR_URL_MAX_LENGTH - 48


def _avatar_url(url: AnyUrl) -> AnyUrl:
    if url.username or url.password:
        raise ValueError("must not carry credentials")
    # Punycode for an IDN host, or percent-encoding (a `'` in a query is `%27`), can add more.
    if len(str(url)) > AVATAR_URL_MAX_LENGTH:
        raise ValueError(f"must be at most {AVATAR_URL_MAX_LENGTH} characters once normalised")
    return url


# The same rule, for the OpenAPI document (the validators above are what is enforced): no
# character of Unicode's Cc category, U+0000-U+001F and U+007F-U+009F; a bio keeps \t \n \r.
_NO_CONTROLS = {"pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"}
_NO_CONTROLS_BUT_WHITESPACE = {
    "pattern": "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"
}
DisplayName = Annotated[
    str,
    Field(max_length=DISPLAY_NAME_MAX_LENGTH, json_schema_extra=_NO_CONTROLS),
    AfterValidator(_storable),
]
Bio = Annotated[
    str,
    Field(max_length=BIO_MAX_LENGTH, json_schema_extra=_NO_CONTROLS_BUT_WHITESPACE),
    AfterValidator(_bio),
]
AvatarUrl = Annotated[
    AnyUrl,
    UrlConstraints(
        max_length=AVATAR_URL_SENT_MAX_LENGTH, allowed_schemes=["https"], host_required=True
    ),
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


# A batch is what the auth service's publisher sends at once (EVENT_BATCH_SIZE, at most 1000).
EVENT_BATCH_MAX = 1000


class Event(BaseModel):
    """One event of the auth service (docs/events.md)."""

    id: uuid.UUID
    sequence: int = Field(ge=1)
    type: str = Field(min_length=1, max_length=64)
    account_id: uuid.UUID
    session_id: uuid.UUID | None = None
    occurred_at: AwareDatetime
    data: dict[str, Any] = Field(default_factory=dict)


class EventBatch(BaseModel):
    """`POST /users/events`: events in sequence order."""

    events: list[Event] = Field(max_length=EVENT_BATCH_MAX)
