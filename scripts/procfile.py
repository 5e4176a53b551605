"""Print the Procfile that `make run` hands to honcho: each replica of each service, then Traefik.

`AUTH_REPLICAS` and `USERS_REPLICAS` (default 1) say how many processes of each service to
run; a replica killed by a signal is restarted. Replica k listens on the service's port
+ 10 * (k - 1), unless `AUTH_REPLICA_PORTS` or `USERS_REPLICA_PORTS` list the ports.
The gateway is told every replica's URL. More than one replica needs PostgreSQL: replicas
share signing keys, sessions and throttling state through their database, which SQLite files
cannot offer to several processes safely.
"""

import os
import sys

SERVICES = {"auth": 8001, "users": 8002}
REPLICA_PORT_STEP = 10


def _replica_ports(service: str, default_port: int) -> list[int]:
    prefix = service.upper()
    count = int(os.environ.get(f"{prefix}_REPLICAS", "1"))
    if count < 1:
        raise SystemExit(f"{prefix}_REPLICAS must be at least 1, not {count}")
    if listed := os.environ.get(f"{prefix}_REPLICA_PORTS"):
        ports = [int(port) for port in listed.split(",")]
        if len(ports) != count:
            raise SystemExit(
                f"{prefix}_REPLICA_PORTS lists {len(ports)} ports for {count} replicas"
            )
        return ports
    first = int(os.environ.get(f"{prefix}_PORT", default_port))
    return [first + REPLICA_PORT_STEP * k for k in range(count)]


def _require_postgres(service: str) -> None:
    prefix = service.upper()
    url = os.environ.get(f"{prefix}_DATABASE_URL") or os.environ.get("DATABASE_URL") or ""
    if not url.startswith("postgresql"):
        raise SystemExit(
            f"{prefix}_REPLICAS > 1 needs PostgreSQL: set {prefix}_DATABASE_URL "
            f"(postgresql+asyncpg://…). Replicas share keys, sessions and throttling state "
            f"through the database; the default SQLite file cannot serve several processes."
        )


def procfile() -> str:
    lines, upstreams = [], {}
    for service, default_port in SERVICES.items():
        ports = _replica_ports(service, default_port)
        if len(ports) > 1:
            _require_postgres(service)
        for index, port in enumerate(ports, start=1):
            # honcho stops the whole stack when any process ends; a replica killed by a
            # signal (a crash, an operator's kill) is restarted instead, as an orchestrator
            # would. Any other exit (a bad setting, say) still ends the stack, loudly.
            lines.append(
                f"{service}{index}: while :; do {service.upper()}_PORT={port} "
                f"{service}-service serve; status=$?; [ $status -gt 128 ] || exit $status; "
                f'echo "{service}{index} ended by signal $((status - 128)); restarting"; '
                "sleep 1; done"
            )
        upstreams[service] = ",".join(f"http://127.0.0.1:{port}" for port in ports)
    lines.append(
        f"gateway: AUTH_UPSTREAMS={upstreams['auth']} USERS_UPSTREAMS={upstreams['users']} "
        "exec sh gateway/traefik.sh"
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(procfile())
