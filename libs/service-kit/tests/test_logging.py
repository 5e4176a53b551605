"""JSON log lines never carry a credential: no frame locals, and every event redacted."""

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from service_kit.logging import REDACTED, configure_logging, is_secret_key, redact_text


@pytest.fixture
def log_lines(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Call it to configure the logging as a service does; call what it returns to read
    what was written (configured in the test's body, where stdout is captured)."""

    def configure() -> Any:
        configure_logging("kit", "INFO")

        def read() -> tuple[str, list[dict[str, Any]]]:
            out = capsys.readouterr().out
            return out, [json.loads(line) for line in out.splitlines()]

        return read

    try:
        yield configure
    finally:
        logging.getLogger().handlers.clear()
        structlog.reset_defaults()


def _sign_in(password: str, form: dict[str, str]) -> None:
    connection = None  # the database went away
    raise ConnectionError(f"lost the connection {connection!r}")


def test_tracebacks_are_rendered_without_the_frames_variables(log_lines: Any) -> None:
    read = log_lines()
    try:
        _sign_in("hunter2-secret", {"grant_type": "password", "password": "hunter2-secret"})
    except ConnectionError:
        structlog.stdlib.get_logger("test").exception("unhandled_exception")
    out, lines = read()
    assert "hunter2-secret" not in out
    (line,) = lines
    frames = line["exception"][0]["frames"]
    assert frames[-1]["name"] == "_sign_in"  # the traceback is there, its variables are not
    assert all("locals" not in frame for frame in frames)


def test_credentials_are_masked_at_any_depth_in_our_events(log_lines: Any) -> None:
    read = log_lines()
    structlog.stdlib.get_logger("test").info(
        "request_seen",
        password="pw-1",
        New_Password="pw-2",
        nested={"refresh_token": "rt-3", "headers": [{"Authorization": "Bearer at-4"}]},
        cookie="session=ck-5",
        client_secret="cs-6",
        code_verifier="cv-7",
        form="grant_type=password&username=ada&password=pw-8",
        user="ada@example.com",
    )
    out, (line,) = read()
    for secret in ("pw-1", "pw-2", "rt-3", "at-4", "ck-5", "cs-6", "cv-7", "pw-8"):
        assert secret not in out
    assert line["password"] == REDACTED
    assert line["nested"]["headers"][0]["Authorization"] == REDACTED
    assert line["user"] == "ada@example.com"  # what is not a credential stays readable
    assert line["form"] == f"grant_type=password&username=ada&password={REDACTED}"


def test_standard_library_records_and_their_exceptions_are_masked(log_lines: Any) -> None:
    read = log_lines()
    logger = logging.getLogger("uvicorn.error")
    logger.error("form was %s", {"username": "ada", "password": "pw-9"})
    try:
        raise ValueError("refused: Authorization: Bearer eyJ.at-10.sig; refresh_token=rt-11")
    except ValueError:
        logger.exception("Exception in ASGI application")
    out, lines = read()
    for secret in ("pw-9", "at-10", "rt-11"):
        assert secret not in out
    assert lines[0]["event"] == f"form was {{'username': 'ada', 'password': {REDACTED}}}"
    assert lines[1]["exception"][0]["exc_type"] == "ValueError"


def test_standard_library_extra_fields_are_kept_and_masked(log_lines: Any) -> None:
    read = log_lines()
    logging.getLogger("auth_client.jwks").warning(
        "jwks_fetch_failed", extra={"error": "ConnectTimeout", "client_secret": "cs-12"}
    )
    out, lines = read()
    assert "cs-12" not in out
    assert lines[0]["event"] == "jwks_fetch_failed"
    assert lines[0]["error"] == "ConnectTimeout"
    assert lines[0]["client_secret"] == REDACTED


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("password", True),
        ("current_password", True),
        ("NEW_PASSWORD", True),
        ("token", True),
        ("access_token", True),
        ("id_token", True),
        ("refresh_token", True),
        ("code", True),
        ("code_verifier", True),
        ("client_secret", True),
        ("client_assertion", True),
        ("Authorization", True),
        ("Cookie", True),
        ("set-cookie", True),
        ("token_type_hint", False),
        ("request_id", False),
        ("status", False),
        ("client_id", False),
    ],
)
def test_which_keys_name_a_credential(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("token=abc&token_type_hint=refresh_token", "token_type_hint="),
        ('{"password": "p w", "email": "a@example.com"}', '"email": "a@example.com"'),
        ("Basic dXNlcjpwYXNz", "Basic"),
        ("code: 'xyz'", "code: "),
    ],
)
def test_credential_shaped_text_is_masked(text: str, kept: str) -> None:
    masked = redact_text(text)
    assert REDACTED in masked
    assert kept in masked
    for secret in ("abc", "p w", "dXNlcjpwYXNz", "xyz"):
        assert secret not in masked
