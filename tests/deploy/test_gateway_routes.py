"""The ECS gateway reuses gateway/dynamic.yml (baked in its image); no deploy file copies a route."""

import re
from pathlib import Path

from deploy_templates import DEPLOY, ROOT, rendered

DYNAMIC = ROOT / "gateway" / "dynamic.yml"
# What a copy of the routes would contain: Traefik rule syntax, or the paths the rules match.
ROUTE_MARKERS = re.compile(r"PathPrefix|Path\(|routers|/\.well-known/openid-configuration|/gateway/not-found")


def deploy_files() -> list[Path]:
    return [
        path
        for path in DEPLOY.rglob("*")
        if path.is_file() and path.suffix in {".json", ".yaml", ".yml", ".py", ".sh"}
    ]


def test_no_deploy_file_duplicates_the_gateway_routes() -> None:
    assert ROUTE_MARKERS.search(DYNAMIC.read_text()), "the markers do match the real routes"
    copies = [str(path) for path in deploy_files() if ROUTE_MARKERS.search(path.read_text())]
    assert copies == []


def test_the_ecs_gateway_runs_the_repositorys_traefik_script_with_upstreams_from_env() -> None:
    container = rendered(DEPLOY / "ecs" / "task-definitions" / "gateway.json")["containerDefinitions"][0]
    assert container["entryPoint"] == ["/bin/sh"]
    assert container["command"][0] == "/app/gateway/traefik.sh"
    assert container["healthCheck"]["command"] == ["CMD", "/bin/sh", "/app/gateway/traefik.sh", "healthcheck"]
    environment = {item["name"] for item in container["environment"]}
    # The variables dynamic.yml reads are the ones the task sets.
    read_by_routes = set(re.findall(r'env "([A-Z_]+)"', DYNAMIC.read_text()))
    assert read_by_routes == {"AUTH_UPSTREAMS", "USERS_UPSTREAMS"}
    assert read_by_routes <= environment
    # And the ports/hosts the script reads.
    script = (ROOT / "gateway" / "traefik.sh").read_text()
    for name in ("GATEWAY_HOST", "GATEWAY_PORT", "GATEWAY_INTERNAL_HOST", "GATEWAY_INTERNAL_PORT"):
        assert f"${{{name}" in script
        assert name in environment
