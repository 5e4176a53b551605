"""The client's address behind the proxies a deployment puts in front of a service.

Each proxy appends the address it received the request from to X-Forwarded-For, so the
header reads, left to right: whatever the client wrote, then one entry per proxy. Reading
from the right, an entry is believable only while every entry to its right (and the
connection's peer) is one of the deployment's own proxies, `TRUSTED_PROXIES`:

    client address = the first entry, from the right, that is not a trusted proxy;
                     the peer itself when the peer is not a trusted proxy or sent none.

So what a client writes into X-Forwarded-For never counts: a proxy's entry stands to its
right, and that entry is the client's real address. Trusted proxies are named by address
(CIDRs) rather than counted: whether an ECS Service Connect proxy appends an entry of its
own is not documented, and the rule gives the same answer either way. It holds as long as
no client reaches the service from inside `TRUSTED_PROXIES` (deploy/README.md says, per
deployment, why none can).
"""

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_address(value: str) -> Address | None:
    """An IP address from an X-Forwarded-For entry or a peer: `1.2.3.4`, `1.2.3.4:80`,
    `::1`, `[::1]:80`; None for anything else."""
    value = value.strip()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:  # IPv4 with a port (the ALB can add the client's port)
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """The deployment's own proxies: addresses and CIDRs, comma-separated (`TRUSTED_PROXIES`).

    Empty trusts nobody (X-Forwarded-For is never read). Anything that is not an address or
    a network is refused, so that a typing mistake fails at start rather than trusting no one.
    """

    def __init__(self, value: str) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(item.strip(), strict=False)
            for item in value.split(",")
            if item.strip()
        )

    def __contains__(self, address: Address | str | None) -> bool:
        if isinstance(address, str):
            address = parse_address(address)
        return address is not None and any(
            address.version == network.version and address in network for network in self.networks
        )

    def __bool__(self) -> bool:
        return bool(self.networks)


def forwarded_for(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """Every X-Forwarded-For entry, left to right; several header lines are one list."""
    entries: list[str] = []
    for name, value in headers:
        if name.lower() == b"x-forwarded-for":
            entries += [entry.strip() for entry in value.decode("latin-1").split(",")]
    return [entry for entry in entries if entry]


def client_address(peer: str | None, forwarded: list[str], trusted: TrustedProxies) -> str | None:
    """The client's address (see the module's docstring for the rule).

    `peer` is the connection's remote address, `forwarded` the X-Forwarded-For entries.
    An entry that is not an IP address means the chain is not what the deployment says
    (no proxy of ours writes one): the peer is kept rather than a string a client chose.
    """
    peer_address = parse_address(peer) if peer else None
    if peer_address not in trusted or not forwarded:
        return str(peer_address) if peer_address else peer
    for entry in reversed(forwarded):
        address = parse_address(entry)
        if address is None:
            return str(peer_address)
        if address not in trusted:
            return str(address)
    # Every entry is a proxy of ours: the request began inside the deployment itself.
    return str(parse_address(forwarded[0]))


class ClientAddressMiddleware:
    """Put the client's address in the ASGI scope's `client`, for routes and logs alike.

    It does the job of uvicorn's `proxy_headers` and runs the same under Lambda, where there
    is no uvicorn: one rule, one setting, in every deployment. (Where uvicorn's runs first
    with the same TRUSTED_PROXIES, as `auth-service serve` still has it, the answer is the
    same: services/auth/tests/test_auth_without_gateway.py.)
    """

    def __init__(self, app: ASGIApp, trusted_proxies: str) -> None:
        self.app = app
        self.trusted = TrustedProxies(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.trusted:
            peer = scope.get("client")
            address = client_address(
                peer[0] if peer else None, forwarded_for(scope["headers"]), self.trusted
            )
            if address is not None:
                scope["client"] = (address, peer[1] if peer else 0)
        await self.app(scope, receive, send)
