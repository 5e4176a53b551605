"""Who a verified access token speaks for: a person, or a service in its own name."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Principal:
    """What a verified access token (RFC 9068) says about its bearer.

    A person's token names the account in `sub` and the sign-in session in `sid`. A
    service's token (the `client_credentials` grant) speaks for the client itself: its `sub`
    is its `client_id` and it belongs to no session.
    """

    subject: str
    client_id: str
    scopes: frozenset[str]
    roles: frozenset[str]
    session_id: str | None
    expires_at: int
    issued_at: int
    token_id: str
    key_id: str
    # Every verified claim, read-only; left out of comparisons and of repr (no claim in logs).
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_service(self) -> bool:
        """A service's own token (`client_credentials`): `sub` is the client, no session."""
        return self.subject == self.client_id and self.session_id is None

    @property
    def is_person(self) -> bool:
        """A person's token: issued for an account, within a sign-in session."""
        return not self.is_service
