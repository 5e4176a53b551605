"""Clients no one here wrote: PyJWT's JWKS client and Node's panva/jose verify our tokens.

Each discovers the key set from the discovery document through the gateway, as a resource
server of another team would, and checks RS256, `kid`, `typ: at+jwt`, `iss` and `aud`.
"""

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import jwt
import pytest

INTEROP = Path(__file__).parent / "interop"
AUDIENCE = "auth-platform"


@pytest.fixture
def access_token(gateway: httpx.Client) -> str:
    email = f"stock-{uuid.uuid4().hex[:12]}@example.com"
    password = f"interop {uuid.uuid4().hex[:8]} verifier"
    gateway.post("/auth/register", json={"email": email, "password": password}).raise_for_status()
    form = {"grant_type": "password", "username": email, "password": password}
    response = gateway.post("/auth/token", data=form)
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


@pytest.fixture
def discovery(gateway: httpx.Client) -> dict[str, str]:
    document: dict[str, str] = gateway.get("/.well-known/openid-configuration").json()
    return document


def test_pyjwt_jwks_client_verifies_an_access_token(
    access_token: str, discovery: dict[str, str]
) -> None:
    signing_key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(access_token)
    claims = jwt.decode(
        access_token,
        signing_key.key,
        algorithms=["RS256"],
        audience=AUDIENCE,
        issuer=discovery["issuer"],
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
    )
    header = jwt.get_unverified_header(access_token)
    assert header["typ"] == "at+jwt"
    assert header["kid"] == signing_key.key_id
    assert uuid.UUID(claims["sub"])


@pytest.fixture(scope="module")
def node_jose() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js is not installed")
    if not (INTEROP / "node_modules" / "jose").exists():
        subprocess.run(  # noqa: S603 - npm from PATH, the committed lock file
            [npm, "ci", "--no-audit", "--no-fund", "--silent"],
            cwd=INTEROP,
            check=True,
            timeout=180,
        )
    return Path(node)


def test_node_jose_verifies_an_access_token(
    node_jose: Path, access_token: str, discovery: dict[str, str], gateway: httpx.Client
) -> None:
    discovery_url = str(gateway.base_url.join("/.well-known/openid-configuration"))
    result = subprocess.run(  # noqa: S603 - node, our script, our arguments
        [str(node_jose), "verify.mjs", discovery_url, AUDIENCE, access_token],
        cwd=INTEROP,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    verified = json.loads(result.stdout)
    assert verified["header"]["alg"] == "RS256"
    assert verified["header"]["typ"] == "at+jwt"
    assert verified["payload"]["iss"] == discovery["issuer"]


def test_node_jose_refuses_a_tampered_token(
    node_jose: Path, access_token: str, gateway: httpx.Client
) -> None:
    header, payload, signature = access_token.split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["roles"] = ["admin"]
    forged_payload = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    forged = f"{header}.{forged_payload}.{signature}"
    discovery_url = str(gateway.base_url.join("/.well-known/openid-configuration"))
    result = subprocess.run(  # noqa: S603
        [str(node_jose), "verify.mjs", discovery_url, AUDIENCE, forged],
        cwd=INTEROP,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "signature verification failed" in result.stderr
