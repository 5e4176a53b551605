"""The auth-client package, installed alone in a fresh virtual environment with `pip`, runs
its README's examples against the real stack: the service it protects trusts the platform's
tokens and nothing else.
"""

import ast
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from testsupport import ROOT
from testsupport.accounts import register_and_log_in
from testsupport.stack import Stack, free_port

PACKAGE = ROOT / "libs" / "auth-client"
README = (PACKAGE / "README.md").read_text()
INSTALL_TIMEOUT_SECONDS = 600
START_TIMEOUT_SECONDS = 60
AUDIENCE = "auth-platform"


def readme_example(file_name: str) -> str:
    """The README's Python block that starts with `# <file_name>:`."""
    for block in re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL):
        if block.startswith(f"# {file_name}:"):
            return str(block)
    raise AssertionError(f"no {file_name} example in {PACKAGE / 'README.md'}")


@pytest.fixture(scope="session")
def package_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a new virtual environment holding only auth-client (and uvicorn)."""
    venv = tmp_path_factory.mktemp("auth-client-venv")
    subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "venv", str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    installed = subprocess.run(  # noqa: S603 - pip of the venv just made, our own folder
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"{PACKAGE}[fastapi]",
            "uvicorn",  # to serve the example; the package itself needs no server
        ],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_SECONDS,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return python


@pytest.fixture(scope="session")
def discovery(stack: Stack) -> dict[str, Any]:
    """The discovery document: the issuer and key set another team's service would use."""
    document: dict[str, Any] = httpx.get(f"{stack.url}/.well-known/openid-configuration").json()
    return document


@pytest.fixture(scope="session")
def reports_service(
    package_python: Path, discovery: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The README's `reports.py`, served by uvicorn from the fresh environment."""
    workdir = tmp_path_factory.mktemp("reports")
    (workdir / "reports.py").write_text(readme_example("reports.py"))
    port = free_port()
    env = {
        **_clean_environment(),
        "TOKEN_ISSUER": discovery["issuer"],
        "JWKS_URL": discovery["jwks_uri"],
    }
    log_path = workdir / "reports.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603 - the venv's uvicorn, the README's app
            [str(package_python), "-m", "uvicorn", "reports:app", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_port(port, process, log_path)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def _clean_environment() -> dict[str, str]:
    # Nothing of this repository's environment may leak into the fresh one.
    leaking = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    return {name: value for name, value in os.environ.items() if name not in leaking}


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the example exited:\n{log_path.read_text()[-4000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"the example did not listen:\n{log_path.read_text()[-4000:]}")


def _printed_secret(stdout: str) -> str:
    # The command prints one JSON document; log lines may share its stdout.
    for candidate in (stdout, *stdout.splitlines()):
        try:
            document = json.loads(candidate)
        except ValueError:
            continue
        secret = document.get("client_secret") if isinstance(document, dict) else None
        if isinstance(secret, str):
            return secret
    raise AssertionError(f"no client_secret printed: {stdout[-2000:]}")


def test_the_package_installs_alone_with_none_of_this_repository(package_python: Path) -> None:
    probe = (
        "import importlib.util, auth_client, auth_client.fastapi; "
        "others = ['service_kit', 'users_service', 'auth_service', 'testsupport']; "
        "print([name for name in others if importlib.util.find_spec(name)]); "
        "print(auth_client.__file__)"
    )
    result = subprocess.run(  # noqa: S603 - the venv's python, a fixed probe
        [str(package_python), "-c", probe],
        capture_output=True,
        text=True,
        env=_clean_environment(),
        cwd=package_python.parent,
        timeout=60,
        check=True,
    )
    found, location = result.stdout.splitlines()
    assert found == "[]"
    assert location.startswith(str(package_python.parents[1]))  # installed, not the checkout


def test_the_readme_service_accepts_a_persons_token_from_the_platform(
    reports_service: str, gateway: httpx.Client
) -> None:
    account = register_and_log_in(gateway)
    with httpx.Client(base_url=reports_service, timeout=10) as reports:
        whoami = reports.get("/whoami", headers=account.headers)
        assert whoami.status_code == 200, whoami.text
        assert whoami.json() == {"subject": account.id, "service": False}

        # A person's token does not carry the scope the reports need.
        refused = reports.get("/reports", headers=account.headers)
        assert refused.status_code == 403
        assert refused.headers["www-authenticate"] == (
            'Bearer error="insufficient_scope", scope="reports:read"'
        )
        assert refused.headers["content-type"] == "application/problem+json"


def test_the_readme_service_refuses_missing_and_forged_tokens(
    reports_service: str, gateway: httpx.Client, discovery: dict[str, Any]
) -> None:
    account = register_and_log_in(gateway)
    header, _claims, signature = account.access_token.split(".")
    real_claims = jwt.decode(account.access_token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(account.access_token)["kid"]
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    admin_claims = {**real_claims, "roles": ["admin"], "scope": "reports:read"}
    forged = [
        # Our own key under the platform's kid, with every claim right.
        jwt.encode(admin_claims, attacker, "RS256", headers={"kid": kid, "typ": "at+jwt"}),
        # The platform's signature over different claims.
        f"{header}.{jwt.utils.base64url_encode(json.dumps(admin_claims).encode()).decode()}"
        f".{signature}",
        # Unsigned.
        jwt.encode(admin_claims, "", "none", headers={"kid": kid, "typ": "at+jwt"}),
        "not-a-token",
    ]
    with httpx.Client(base_url=reports_service, timeout=10) as reports:
        missing = reports.get("/whoami")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert missing.headers["content-type"] == "application/problem+json"
        for token in forged:
            response = reports.get("/reports", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, token
            assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        # The real token still works: the refusals were about the forgeries, not the service.
        assert reports.get("/whoami", headers=account.headers).status_code == 200


def test_the_readme_caller_reads_profiles_with_its_own_token(
    package_python: Path, stack: Stack, gateway: httpx.Client, discovery: dict[str, Any]
) -> None:
    assert "client_credentials" in discovery["grant_types_supported"]
    stack.require_local()
    client_id = f"reports-{uuid.uuid4().hex[:8]}"
    created = stack.cli(
        "auth",
        "clients",
        "create",
        client_id,
        "--type",
        "confidential",
        "--grant-types",
        "client_credentials",
        "--scopes",
        "users:read",
    )
    assert created.returncode == 0, created.stderr
    secret = _printed_secret(created.stdout)
    owner = register_and_log_in(gateway)
    assert gateway.get("/users/me", headers=owner.headers).status_code == 200  # a profile

    caller = readme_example("caller.py").replace('client_id="reports"', f'client_id="{client_id}"')
    result = subprocess.run(  # noqa: S603 - the venv's python, the README's caller
        [str(package_python), "-c", caller],
        env={**_clean_environment(), "PLATFORM_URL": stack.url, "CLIENT_SECRET": secret},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    listed = ast.literal_eval(result.stdout.strip())  # the caller prints a page of profile ids
    assert isinstance(listed, list)
    assert 1 <= len(listed) <= 10
    assert all(uuid.UUID(profile_id) for profile_id in listed)
