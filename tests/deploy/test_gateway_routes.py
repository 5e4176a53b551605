"""The ECS gateway reuses gateway/dynamic.yml (baked in its image); nothing copies a route."""

import re
from pathlib import Path
from typing import Any

from testsupport import ROOT
from testsupport.deploy_templates import DEPLOY, rendered

DYNAMIC = ROOT / "gateway" / "dynamic.yml"
SCRIPT = ROOT / "gateway" / "traefik.sh"
# What a copy of the routes would contain: Traefik's rule syntax or its routers section.
ROUTE_MARKERS = re.compile(r"PathPrefix\(|Path\(`|routers:|\.well-known/openid-configuration")


def deploy_files() -> list[Path]:
    return [
        path
        for path in DEPLOY.rglob("*")
        if path.is_file() and path.suffix in {".json", ".yaml", ".yml", ".py", ".sh"}
    ]


def gateway_container() -> Any:
    return rendered(DEPLOY / "ecs" / "task-definitions" / "gateway.json")["containerDefinitions"][0]


def test_no_deploy_file_duplicates_the_gateway_routes() -> None:
    assert ROUTE_MARKERS.search(DYNAMIC.read_text()), "the markers do match the real routes"
    copies = [str(path) for path in deploy_files() if ROUTE_MARKERS.search(path.read_text())]
    assert copies == []


def test_the_gateway_runs_the_script_where_its_image_puts_it() -> None:
    dockerfile = (ROOT / "gateway" / "Dockerfile").read_text()
    copied_to = re.search(r"^COPY gateway/traefik\.sh .*?(\S+/)\s*$", dockerfile, re.MULTILINE)
    assert copied_to, "gateway/Dockerfile copies traefik.sh into the image"
    script = f"{copied_to[1]}traefik.sh"
    container = gateway_container()
    assert container["entryPoint"] == ["/bin/sh", script]
    assert container["healthCheck"]["command"] == ["CMD", "/bin/sh", script, "healthcheck"]


def test_every_gateway_variable_the_task_sets_is_one_the_script_or_routes_read() -> None:
    read = set(re.findall(r'env "([A-Z_]+)"', DYNAMIC.read_text()))
    read |= set(re.findall(r"\$\{([A-Z_]+):=", SCRIPT.read_text()))
    environment = {item["name"]: item["value"] for item in gateway_container()["environment"]}
    assert set(environment) <= read
    # The upstreams come in by environment, so the routes stay in dynamic.yml alone.
    assert {"AUTH_UPSTREAMS", "USERS_UPSTREAMS"} <= set(environment)


def test_behind_the_load_balancer_the_client_address_survives() -> None:
    environment = {item["name"]: item["value"] for item in gateway_container()["environment"]}
    # The load balancer appends the client's address: trust it from inside the VPC only,
    # and rate-limit on that last hop rather than on the load balancer's own address.
    assert environment["GATEWAY_TRUSTED_IPS"] == "10.0.0.0/16"
    assert environment["GATEWAY_CLIENT_IP_DEPTH"] == "1"
    # Ping, metrics and the dashboard stay on loopback, as the script intends.
    assert environment["GATEWAY_INTERNAL_HOST"] == "127.0.0.1"
