"""The client's address, believing `X-Forwarded-For` only when it comes from a trusted proxy."""

import ipaddress
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.types import Scope

from config import IPNetwork


def _is_trusted(address: str, trusted: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_ip(scope: Scope, headers: Headers, trusted: Sequence[IPNetwork]) -> str:
    """The peer address, unless the peer is a trusted proxy: then the right-most untrusted forwarded address.

    Reading from the right matters: a client can put anything at the left of `X-Forwarded-For`, but each
    trusted proxy appends the address it saw.
    """
    peer = (scope.get("client") or ("unknown", 0))[0]
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    forwarded = ",".join(headers.getlist("x-forwarded-for"))
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return hops[0] if hops else peer
