"""Mail composition and the outbox's sealing: templates filled and escaped, content bound
to its message."""

import uuid

import pytest
from cryptography.exceptions import InvalidTag

from auth_service.mail import Composed, MailKind, MailSealer, compose

CONTEXT = {
    "email": "<b>ada</b>@example.com",
    "link": "https://app.example/reset-password?token=abc&x=1",
    "token": "abc",
    "minutes": 30,
}


@pytest.mark.parametrize("kind", list(MailKind))
def test_every_kind_has_a_subject_a_text_and_an_html_body(kind: MailKind) -> None:
    composed = compose(kind, **CONTEXT)
    assert composed.subject
    assert "https://app.example/reset-password?token=abc&x=1" in composed.text
    assert "<b>ada</b>@example.com" in composed.text
    # HTML-escaped in the HTML body, never markup from the data.
    assert "<b>ada</b>" not in composed.html
    assert "&lt;b&gt;ada&lt;/b&gt;@example.com" in composed.html
    assert 'href="https://app.example/reset-password?token=abc&amp;x=1"' in composed.html


def test_a_missing_template_variable_is_an_error_not_a_blank() -> None:
    with pytest.raises(Exception, match="token"):
        compose(MailKind.PASSWORD_RESET, email="a@example.com", link="l", minutes=1)


def test_sealed_content_opens_only_for_its_message_and_key() -> None:
    sealer = MailSealer("a key-encryption key of the tests, long enough to be one")
    composed = Composed("subject", "text with token abc", "<p>html</p>")
    message_id = uuid.uuid4()
    sealed = sealer.seal(message_id, composed)
    assert b"abc" not in sealed
    assert sealer.open(message_id, sealed) == composed
    with pytest.raises(InvalidTag):
        sealer.open(uuid.uuid4(), sealed)
    with pytest.raises(InvalidTag):
        MailSealer("another key-encryption key, long enough to be one too").open(message_id, sealed)
