"""Mail: messages composed from templates (plain text and HTML, `templates/mail/`) and
written to the outbox in the caller's transaction, so that a message exists exactly when the
change that causes it was committed. `mail_delivery` sends them.

A message may carry a single-use token: its subject and bodies are sealed (AES-256-GCM
under a key derived from KEY_ENCRYPTION_KEY, bound to the message id) and erased once sent,
so the database never holds a usable token in the clear.
"""

import functools
import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.models import MailMessage
from auth_service.throttling import ThrottlePolicy

if TYPE_CHECKING:
    from jinja2 import Environment

_NONCE_BYTES = 12
_SEAL_INFO = b"auth-service mail outbox v1"


@functools.cache
def _templates() -> "Environment":
    # Imported by the first message composed, not at start (as the pages do).
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=PackageLoader("auth_service", "templates/mail"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


class MailKind(StrEnum):
    """A kind of message: its templates are `<kind>.txt` and `<kind>.html`."""

    EMAIL_VERIFICATION = "email_verification"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a template name


SUBJECTS = {
    MailKind.EMAIL_VERIFICATION: "Confirm your email address",
    MailKind.PASSWORD_RESET: "Reset your password",
}


@dataclass(frozen=True)
class Composed:
    """A message's subject and its two bodies."""

    subject: str
    text: str
    html: str


def compose(kind: MailKind, **context: Any) -> Composed:
    """The message of `kind`, its templates filled with `context` (every name required;
    HTML-escaped in the HTML body)."""
    return Composed(
        subject=SUBJECTS[kind],
        text=_templates().get_template(f"{kind.value}.txt").render(**context),
        html=_templates().get_template(f"{kind.value}.html").render(**context),
    )


class MailSealer:
    """Seals a message's content for the outbox, bound to its id (AES-256-GCM under a key
    derived, HKDF-SHA256, from KEY_ENCRYPTION_KEY)."""

    def __init__(self, key_encryption_key: str) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO).derive(
            key_encryption_key.encode("utf-8")
        )
        self._aead = AESGCM(derived)

    def seal(self, message_id: uuid.UUID, composed: Composed) -> bytes:
        plaintext = json.dumps(
            {"subject": composed.subject, "text": composed.text, "html": composed.html}
        ).encode()
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, message_id.bytes)

    def open(self, message_id: uuid.UUID, sealed: bytes) -> Composed:
        """What `seal` sealed for this id; `InvalidTag` for anything else."""
        plaintext = self._aead.decrypt(
            sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], message_id.bytes
        )
        return Composed(**json.loads(plaintext))


@dataclass(frozen=True)
class Outbox:
    """Writes messages into the outbox; one per application."""

    sealer: MailSealer
    # Where mailed links point (EMAIL_LINK_BASE_URL, or PUBLIC_URL).
    link_base_url: str

    def link(self, page: str, token: str) -> str:
        """A page of the platform's app, with the token it posts to the API."""
        return f"{self.link_base_url}/{page}?token={token}"

    def enqueue(
        self, db: AsyncSession, recipient: str, composed: Composed, *, now: datetime
    ) -> uuid.UUID:
        """Add the message to `db`'s unit of work (written when the operation commits); its
        id, which is also its Message-ID."""
        message_id = uuid.uuid4()
        db.add(
            MailMessage(
                id=message_id,
                recipient=recipient,
                sealed=self.sealer.seal(message_id, composed),
                created_at=now,
                attempts=0,
                next_attempt_at=now,
            )
        )
        return message_id


@dataclass(frozen=True)
class MailedLinks:
    """What the operations that mail a link need: the outbox, how long a mailed token
    works, and the throttle of such requests (per email address, per client address)."""

    outbox: Outbox
    token_ttl: timedelta
    throttle: ThrottlePolicy

    @property
    def minutes(self) -> int:
        return max(1, int(self.token_ttl.total_seconds() // 60))
