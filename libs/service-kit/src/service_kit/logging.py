"""One JSON object per log line, for our own logs and for uvicorn's; never a credential.

Two lines of defence keep secrets out of the log. Tracebacks are rendered without the
frames' local variables (structlog's default shows them, and a sign-in that fails in the
database layer has the password among them). Then, last before rendering, every event
(ours and the standard library's) passes `redact_secrets`, which masks the value of every
key that names a credential, at any depth, and credential-shaped fragments of strings.
"""

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog
from structlog.tracebacks import ExceptionDictTransformer

REDACTED = "[redacted]"

# Key names, compared case-insensitively, whose values are credentials.
SECRET_KEYS = frozenset(
    {
        "password",
        "token",
        "secret",
        "code",
        "code_verifier",
        "client_secret",
        "client_assertion",
        "assertion",
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "private_key",
        "key_encryption_key",
    }
)
# Suffixes of such names: new_password, current_password, refresh_token, id_token, ...
SECRET_SUFFIXES = ("_password", "-password", "_token", "-token", "_secret", "-secret")

_NAMES = "|".join(
    [
        r"[\w-]*(?:password|token|secret)",
        "code",
        "code_verifier",
        "client_assertion",
        "assertion",
        "authorization",
        "cookie",
        "set-cookie",
    ]
)
# `name=value` (forms, query strings), `name: value` and `'name': 'value'` (reprs, JSON):
# the value is replaced up to the next separator.
_NAMED_VALUE = re.compile(
    rf"""(?ix)
    (?P<name>["']?\b(?:{_NAMES})["']?\s*[=:]\s*)
    (?P<value>"[^"]*"|'[^']*'|[^\s&,;'"}}\]\)]+)
    """
)
# Credentials that name themselves: HTTP authorization schemes.
_SCHEME_CREDENTIALS = re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+")


def is_secret_key(key: str) -> bool:
    """True when a field called `key` holds a credential."""
    folded = key.casefold()
    return folded in SECRET_KEYS or folded.endswith(SECRET_SUFFIXES)


def redact_text(text: str) -> str:
    """Mask credential-shaped fragments of free text (exception messages, reprs)."""
    text = _SCHEME_CREDENTIALS.sub(lambda match: f"{match.group(1)} {REDACTED}", text)
    return _NAMED_VALUE.sub(lambda match: f"{match.group('name')}{REDACTED}", text)


def redact(value: Any) -> Any:
    """`value` with every credential masked: by key in mappings, by shape in strings."""
    if isinstance(value, Mapping):
        return {
            key: REDACTED if isinstance(key, str) and is_secret_key(key) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_secrets(
    _logger: Any, _method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """structlog processor: the event dict with every credential masked, at any depth."""
    redacted: structlog.typing.EventDict = redact(event)
    return redacted


# Frames without their variables: a variable may be a password, a token or a form.
render_exceptions = structlog.processors.ExceptionRenderer(
    ExceptionDictTransformer(show_locals=False)
)


# Read as each line is written, not when a logger is first used (loggers cache their
# processors): a process that configures logging again labels every line anew.
_service = "unknown"


def _add_service(
    _logger: Any, _method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    return {"service": _service, **event}


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route structlog and the standard library through one JSON renderer on stdout."""
    global _service
    _service = service
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        # A standard-library record's `extra` fields become the line's fields (libraries such
        # as auth_client log that way), masked below like ours.
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            render_exceptions,
            # Last before rendering, so that it sees the rendered exception too.
            redact_secrets,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    # Our middleware writes the access line, with the request id; uvicorn's would be a duplicate.
    logging.getLogger("uvicorn.access").disabled = True
