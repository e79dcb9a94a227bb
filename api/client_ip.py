"""The client's address, believing `X-Forwarded-For` only when it comes from a trusted proxy."""

import functools
import ipaddress
import logging
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.types import Scope

from config import IPNetwork

logger = logging.getLogger(__name__)

UNKNOWN_CLIENT = "unknown"
"""The client of a request whose connection address is not known: all such requests share one rate-limit budget."""


def _is_trusted(address: str, trusted: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def _forwarded_hops(headers: Headers) -> list[str]:
    forwarded = ",".join(headers.getlist("x-forwarded-for"))
    return [hop.strip() for hop in forwarded.split(",") if hop.strip()]


def _port_of(hop: str) -> int | None:
    try:
        return int(hop.rpartition(":")[2])
    except ValueError:
        return None


def _taken_from_forwarded_for(client: tuple[str, int], hops: Sequence[str]) -> bool:
    """Whether the server wrote a forwarded hop into `scope["client"]` in place of the connection's address.

    Plain `uvicorn main:app` does so for peers in its FORWARDED_ALLOW_IPS (127.0.0.1 and ::1 unless told
    otherwise), before this app can say anything, and keeps no copy of the real peer. It copies the hop's text
    as the host, and as the port what `int()` makes of the text after its last colon, or 0. A real TCP peer has
    a port of its own, which tells it from a peer whose address merely appears in the header. The host is
    matched as a substring, case-insensitively, so that no spelling of a hop (`[v6]:port`, junk around it)
    escapes; a false match only moves a request into the shared UNKNOWN_CLIENT budget.
    """
    host, port = client[0].lower(), client[1]
    return any(host in hop.lower() and (port == 0 or _port_of(hop) == port) for hop in hops)


@functools.cache
def _warn_once_about_the_server() -> None:
    logger.warning(
        "the server replaced client addresses with X-Forwarded-For; they are all counted as '%s'. "
        "Run uvicorn with --no-proxy-headers (or FORWARDED_ALLOW_IPS='') and let TRUSTED_PROXIES decide",
        UNKNOWN_CLIENT,
    )


def _connection_peer(scope: Scope, hops: Sequence[str]) -> str:
    client = scope.get("client")
    if not client:
        return UNKNOWN_CLIENT
    if hops and _taken_from_forwarded_for(client, hops):
        _warn_once_about_the_server()
        return UNKNOWN_CLIENT
    return str(client[0])


def client_ip(scope: Scope, headers: Headers, trusted: Sequence[IPNetwork]) -> str:
    """The peer address, unless the peer is a trusted proxy: then the right-most untrusted forwarded address.

    Reading from the right matters: a client can put anything at the left of `X-Forwarded-For`, but each
    trusted proxy appends the address it saw. When the server has already swapped the peer for a forwarded
    address, the peer is unknown, so it cannot be shown to be a trusted proxy: the client is UNKNOWN_CLIENT,
    whatever TRUSTED_PROXIES says, and no header can give a request a budget of its own.
    """
    hops = _forwarded_hops(headers)
    peer = _connection_peer(scope, hops)
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return hops[0] if hops else peer
