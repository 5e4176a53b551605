"""Every deployment's hops, as the requests arrive: who connects, what X-Forwarded-For says.

One table for two kinds of test: service-kit's unit tests run each row through the client
address rule with the deployment's `TRUSTED_PROXIES`; tests/deploy checks that each
deployment's configuration really sets those values (and that the ECS gateway's rate limit
picks the same client). deploy/README.md explains each chain and cites AWS's documentation.

Addresses: the client is 203.0.113.7, what it writes into X-Forwarded-For is 198.51.100.66
(or a private address, or loopback, to look like a proxy of ours); the ECS VPC is the example
settings' 10.0.0.0/16, a load balancer node in it 10.0.1.17, a gateway task 10.0.2.33.
"""

from dataclasses import dataclass

CLIENT = "203.0.113.7"
SPOOF = "198.51.100.66"
LOAD_BALANCER_NODE = "10.0.1.17"
GATEWAY_TASK = "10.0.2.33"
ECS_VPC = "10.0.0.0/16"
COMPOSE_GATEWAY = "172.31.250.10"
PRIVATE_RANGES = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"

# What each deployment sets TRUSTED_PROXIES to (tests/deploy checks the files say so).
TRUSTED_PROXIES = {
    "local": "127.0.0.1,::1",  # the setting's default; `make run` sets nothing else
    "compose": COMPOSE_GATEWAY,  # docker-compose.yml: the gateway's fixed backend address
    "ecs": f"127.0.0.1,::1,{ECS_VPC}",  # the task's Service Connect proxy, and the VPC
    "express": ECS_VPC,  # the managed load balancer's nodes, in the VPC
    "apprunner": PRIVATE_RANGES,  # App Runner's front end: unpublished, private addresses
    "lambda-http-api": "",  # the adapter's peer is API Gateway's sourceIp already
    "lambda-alb": "",  # the adapter's peer is the entry the load balancer appended
}

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ChainCase:
    """One request as it reaches a service: its peer, its headers; and who the client is."""

    deployment: str
    story: str
    peer: str | None
    headers: Headers
    client: str | None

    @property
    def id(self) -> str:
        return f"{self.deployment}: {self.story}"


def _traefik_headers(forwarded_for: str, real_ip: str, proto: str = "http") -> Headers:
    # What Traefik adds on its way to a service, as the real binary does it (checked by
    # tests/e2e/test_behind_a_load_balancer.py): X-Forwarded-For with its peer appended,
    # X-Real-Ip set to its peer, X-Forwarded-Proto/-Host/-Port/-Server.
    return (
        ("x-forwarded-for", forwarded_for),
        ("x-forwarded-proto", proto),
        ("x-forwarded-host", "auth.example.com"),
        ("x-forwarded-port", "443" if proto == "https" else "80"),
        ("x-forwarded-server", "gateway"),
        ("x-real-ip", real_ip),
    )


ALB = LOAD_BALANCER_NODE
SERVICE_CASES = (
    # --- local (`make run`): client -> Traefik on 127.0.0.1 -> uvicorn on 127.0.0.1. Traefik
    # trusts nobody in front of it (GATEWAY_TRUSTED_IPS empty): it drops what the client
    # wrote and sends its own peer only.
    ChainCase(
        "local",
        "through the gateway",
        "127.0.0.1",
        _traefik_headers("127.0.0.1", "127.0.0.1"),
        "127.0.0.1",
    ),
    ChainCase(
        "local",
        "through the gateway, spoofing (Traefik dropped it)",
        "127.0.0.1",
        _traefik_headers("127.0.0.1", "127.0.0.1"),
        "127.0.0.1",
    ),
    ChainCase(
        "local",
        "through a gateway on 0.0.0.0, a LAN client",
        "127.0.0.1",
        _traefik_headers("192.168.1.20", "192.168.1.20"),
        "192.168.1.20",
    ),
    ChainCase("local", "IPv6 loopback", "::1", (("x-forwarded-for", "::1"),), "::1"),
    ChainCase("local", "directly on the service's port", "127.0.0.1", (), "127.0.0.1"),
    # Loopback is trusted because the gateway is there: a caller on loopback is as trusted
    # as the gateway. Nothing but the developer's own machine reaches these ports.
    ChainCase(
        "local",
        "directly from loopback, spoofing (believed: loopback is the gateway's)",
        "127.0.0.1",
        (("x-forwarded-for", SPOOF),),
        SPOOF,
    ),
    ChainCase(
        "local",
        "directly from the network (AUTH_HOST=0.0.0.0), spoofing",
        "192.168.1.20",
        (("x-forwarded-for", SPOOF),),
        "192.168.1.20",
    ),
    # --- compose: client -> published port -> Traefik -> the backend network -> service.
    # Only the gateway's fixed address is trusted; it too drops what the client wrote.
    ChainCase(
        "compose", "through the gateway", COMPOSE_GATEWAY, _traefik_headers(CLIENT, CLIENT), CLIENT
    ),
    ChainCase(
        "compose",
        "a host-local client (the edge network's gateway address)",
        COMPOSE_GATEWAY,
        _traefik_headers("172.18.0.1", "172.18.0.1"),
        "172.18.0.1",
    ),
    ChainCase(
        "compose",
        "another container on the backend network, spoofing",
        "172.31.250.3",
        (("x-forwarded-for", SPOOF),),
        "172.31.250.3",
    ),
    ChainCase(
        "compose", "the users service fetching the key set", "172.31.250.4", (), "172.31.250.4"
    ),
    # --- ECS: client -> ALB (appends the client) -> Traefik (trusts the VPC: keeps the ALB's
    # header, appends the ALB node) -> Service Connect proxies -> uvicorn, whose peer is the
    # task's own proxy on 127.0.0.1. Whether the proxies append too is not documented:
    # both variants are here and give the same answer.
    ChainCase(
        "ecs",
        "through the load balancer and the gateway",
        "127.0.0.1",
        _traefik_headers(f"{CLIENT}, {ALB}", ALB, "https"),
        CLIENT,
    ),
    ChainCase(
        "ecs",
        "spoofing one address",
        "127.0.0.1",
        _traefik_headers(f"{SPOOF}, {CLIENT}, {ALB}", ALB, "https"),
        CLIENT,
    ),
    ChainCase(
        "ecs",
        "spoofing a VPC address",
        "127.0.0.1",
        _traefik_headers(f"10.0.9.9, {CLIENT}, {ALB}", ALB, "https"),
        CLIENT,
    ),
    ChainCase(
        "ecs",
        "spoofing loopback and a VPC address",
        "127.0.0.1",
        _traefik_headers(f"127.0.0.1, 10.0.2.2, {CLIENT}, {ALB}", ALB, "https"),
        CLIENT,
    ),
    ChainCase(
        "ecs",
        "spoofing with several header lines (Traefik joins them)",
        "127.0.0.1",
        _traefik_headers(f"{SPOOF}, 10.0.0.1, {CLIENT}, {ALB}", ALB, "https"),
        CLIENT,
    ),
    ChainCase(
        "ecs",
        "spoofing X-Real-Ip and Forwarded (never read)",
        "127.0.0.1",
        (*_traefik_headers(f"{CLIENT}, {ALB}", ALB, "https"), ("forwarded", f"for={SPOOF}")),
        CLIENT,
    ),
    ChainCase(
        "ecs",
        "the auth task's proxy appends the gateway task",
        "127.0.0.1",
        _traefik_headers(f"{SPOOF}, {CLIENT}, {ALB}, {GATEWAY_TASK}", ALB, "https"),
        CLIENT,
    ),
    ChainCase(
        "ecs",
        "both proxies append",
        "127.0.0.1",
        _traefik_headers(f"{SPOOF}, {CLIENT}, {ALB}, 127.0.0.1, {GATEWAY_TASK}", ALB, "https"),
        CLIENT,
    ),
    ChainCase(
        "ecs",
        "the load balancer writes the client's port",
        "127.0.0.1",
        _traefik_headers(f"{CLIENT}:50123, {ALB}", ALB, "https"),
        CLIENT,
    ),
    ChainCase(
        "ecs",
        "an IPv6 client",
        "127.0.0.1",
        _traefik_headers(f"2001:db8::7, {ALB}", ALB, "https"),
        "2001:db8::7",
    ),
    ChainCase(
        "ecs",
        "the users service fetching the key set over Service Connect",
        "127.0.0.1",
        (),
        "127.0.0.1",
    ),
    # --- ECS Express Mode: client -> the managed ALB (appends) -> the task, no gateway.
    ChainCase(
        "express",
        "through the load balancer",
        ALB,
        (("x-forwarded-for", CLIENT), ("x-forwarded-proto", "https")),
        CLIENT,
    ),
    ChainCase(
        "express", "spoofing one address", ALB, (("x-forwarded-for", f"{SPOOF}, {CLIENT}"),), CLIENT
    ),
    ChainCase(
        "express",
        "spoofing a VPC address",
        ALB,
        (("x-forwarded-for", f"10.0.1.18, {CLIENT}"),),
        CLIENT,
    ),
    ChainCase(
        "express",
        "spoofing in two header lines",
        ALB,
        (("x-forwarded-for", SPOOF), ("x-forwarded-for", CLIENT)),
        CLIENT,
    ),
    # --- App Runner: client -> App Runner's front end (sets X-Forwarded-For to the source
    # address; whether it keeps what the client wrote is not documented) -> the instance.
    ChainCase(
        "apprunner",
        "the front end replaced the header",
        "10.12.3.4",
        (("x-forwarded-for", CLIENT),),
        CLIENT,
    ),
    ChainCase(
        "apprunner",
        "the front end appended, spoofing",
        "10.12.3.4",
        (("x-forwarded-for", f"{SPOOF}, {CLIENT}"),),
        CLIENT,
    ),
    ChainCase(
        "apprunner",
        "the front end appended, spoofing a private address",
        "10.12.3.4",
        (("x-forwarded-for", f"192.168.0.1, {CLIENT}"),),
        CLIENT,
    ),
    ChainCase(
        "apprunner",
        "an internal hop of App Runner's appended too",
        "172.20.0.5",
        (("x-forwarded-for", f"{SPOOF}, {CLIENT}, 10.12.3.4"),),
        CLIENT,
    ),
    # --- Lambda: no connection, an event. Mangum's peer for an HTTP API event is
    # requestContext.http.sourceIp (the address API Gateway's connection came from); the
    # adapter's, for an ALB event, is the entry the load balancer appended.
    ChainCase(
        "lambda-http-api", "API Gateway's sourceIp", CLIENT, (("x-forwarded-for", CLIENT),), CLIENT
    ),
    ChainCase(
        "lambda-http-api",
        "spoofing (X-Forwarded-For is never read)",
        CLIENT,
        (("x-forwarded-for", f"{SPOOF}, {CLIENT}"),),
        CLIENT,
    ),
    ChainCase(
        "lambda-alb", "through the load balancer", CLIENT, (("x-forwarded-for", CLIENT),), CLIENT
    ),
    ChainCase(
        "lambda-alb", "spoofing", CLIENT, (("x-forwarded-for", f"{SPOOF}, {CLIENT}"),), CLIENT
    ),
)


@dataclass(frozen=True)
class GatewayCase:
    """One request as it reaches the ECS gateway's rate limiter, from the load balancer."""

    story: str
    peer: str
    forwarded_for: str
    client: str


# The ECS gateway (GATEWAY_TRUSTED_IPS = the VPC, GATEWAY_CLIENT_IP_DEPTH = 1): the ALB
# appended one entry, the client's; the rate limit keys on it, as the services do.
GATEWAY_CASES = (
    GatewayCase("through the load balancer", ALB, CLIENT, CLIENT),
    GatewayCase("spoofing one address", ALB, f"{SPOOF}, {CLIENT}", CLIENT),
    GatewayCase("spoofing a VPC address", ALB, f"10.0.9.9, {CLIENT}", CLIENT),
    GatewayCase("spoofing several", ALB, f"{SPOOF}, 127.0.0.1, {CLIENT}", CLIENT),
)


def service_view_behind(gateway: GatewayCase) -> Headers:
    """What the ECS services see of a request the gateway forwarded: the gateway kept the
    load balancer's header (its peer is trusted) and appended that peer."""
    return _traefik_headers(f"{gateway.forwarded_for}, {gateway.peer}", gateway.peer, "https")
