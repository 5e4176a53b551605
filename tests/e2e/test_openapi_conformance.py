"""Each service answers as its OpenAPI document says: Schemathesis's checks through the gateway.

Schemathesis reads `/auth/openapi.json` and `/users/openapi.json` as the gateway serves them,
generates requests from them (valid and invalid, a few hundred per operation and phase) and
checks every answer: no 5xx, no status, content type or header the document does not list,
no body that breaks its schema, valid requests accepted and invalid ones refused, the
`Allow` of a 405, authentication not ignored. Signed in, so that the operations behind a
token are exercised beyond their 401. Its settings are in schemathesis.toml, beside this file.

The stack is the test's own (the fuzzer leaves accounts, throttles and revoked sessions
behind) and hashes passwords at bcrypt's lowest cost: what is checked is the answers, and at
the default cost the thousand-odd password checks of a run would take minutes.
"""

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from testsupport.stack import Stack

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(__file__).with_name("schemathesis_cli.py")
RUN_TIMEOUT_SECONDS = 480
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def fuzzed_stack(private_stack: Callable[..., AbstractContextManager[Stack]]) -> Iterator[Stack]:
    with private_stack(BCRYPT_COST="4") as stack:
        yield stack


def _signed_in(gateway: httpx.Client, stack: Stack, role: str | None = None) -> str:
    """A new account's access token (with `role` granted first, when given)."""
    email = f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
    registered = gateway.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert registered.status_code == 201, registered.text
    if role is not None:
        granted = stack.cli("auth", "accounts", "grant-role", email, role)
        assert granted.returncode == 0, granted.stderr
    form = {"grant_type": "password", "username": email, "password": PASSWORD}
    tokens = gateway.post("/auth/token", data=form)
    assert tokens.status_code == 200, tokens.text
    access_token: str = tokens.json()["access_token"]
    return access_token


@pytest.fixture(scope="module")
def fuzzer_tokens(fuzzed_stack: Stack) -> dict[str, str]:
    """The environment schemathesis.toml reads its tokens from, one account each."""
    with httpx.Client(base_url=fuzzed_stack.url, timeout=10) as gateway:
        return {
            "FUZZ_ACCESS_TOKEN": _signed_in(gateway, fuzzed_stack),
            "FUZZ_ADMIN_TOKEN": _signed_in(gateway, fuzzed_stack, role="admin"),
            "FUZZ_LEAVER_TOKEN": _signed_in(gateway, fuzzed_stack),
            "FUZZ_SESSIONS_TOKEN": _signed_in(gateway, fuzzed_stack),
            "FUZZ_AUTH_ADMIN_TOKEN": _signed_in(gateway, fuzzed_stack, role="admin"),
        }


def _findings(output: str) -> str:
    """Schemathesis's errors and failures first, then its summary: what a failed run found.

    Its report runs to hundreds of lines of progress before them; a tail alone can lose the
    one error that failed the run.
    """
    sections = dict(re.findall(r"(?m)^=+ ([A-Z]+) =+$\n(.*?)(?=^=+ [A-Z]+ =+$|\Z)", output, re.S))
    found = [
        f"{name}\n{sections[name][:15_000]}" for name in ("ERRORS", "FAILURES") if name in sections
    ]
    return "\n".join([*found, output[-3_000:]])


@pytest.mark.parametrize("service", ["auth", "users"])
def test_every_answer_is_one_the_openapi_document_describes(
    fuzzed_stack: Stack, fuzzer_tokens: dict[str, str], service: str, tmp_path: Path
) -> None:
    run = subprocess.run(  # noqa: S603 - the venv's own schemathesis, fixed arguments
        [
            sys.executable,
            str(SCHEMATHESIS),
            "--config-file",
            str(CONFIG),
            "--no-color",
            "run",
            f"{fuzzed_stack.url}/{service}/openapi.json",
            "--checks",
            "all",
        ],
        env={**os.environ, **fuzzer_tokens},
        cwd=tmp_path,  # whatever it writes stays out of the repository
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    assert run.returncode == 0, _findings(run.stdout) + run.stderr[-5_000:]
    # Every operation of the document was tested, and something was.
    operations = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", run.stdout)
    assert operations, run.stdout[-5_000:]
    assert operations[1] == operations[2] == operations[3], operations[0]
    cases = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert cases, run.stdout[-5_000:]
    assert int(cases[1]) == int(cases[2]) >= 50 * int(operations[1]), cases[0]
