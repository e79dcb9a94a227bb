"""The client address used for rate limits: X-Forwarded-For is believed only from trusted proxies.

Also when the server (plain `uvicorn main:app`) has already replaced the peer with a forwarded address.
"""

import asyncio
import contextlib
import ipaddress
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api.client_ip import UNKNOWN_CLIENT, _warn_once_about_the_server, client_ip

PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8:ffff::/48")]


def resolve(peer: str | None, *forwarded: str, trusted=PROXIES) -> str:
    scope = {"type": "http", "client": (peer, 50000) if peer is not None else None}
    headers = Headers(raw=[(b"x-forwarded-for", value.encode("latin-1")) for value in forwarded])
    return client_ip(scope, headers, trusted)


@pytest.mark.parametrize(
    ("trusted", "peer"),
    [
        pytest.param([], "203.0.113.7", id="no-proxies-configured"),
        pytest.param(PROXIES, "203.0.113.7", id="peer-not-a-proxy"),
        pytest.param(PROXIES, "2001:db8::7", id="ipv6-peer-outside-the-proxy-network"),
    ],
)
@pytest.mark.parametrize("forwarded", ["198.51.100.1", "198.51.100.1, 10.0.0.2", "not an address"])
def test_forwarded_header_from_an_untrusted_peer_changes_nothing(trusted, peer, forwarded):
    assert resolve(peer, forwarded, trusted=trusted) == peer


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        pytest.param(["198.51.100.1"], "198.51.100.1", id="one-hop"),
        # A client may write anything on the left; the proxy appends what it saw on the right.
        pytest.param(["6.6.6.6, 198.51.100.1"], "198.51.100.1", id="spoofed-left-hop-ignored"),
        pytest.param(["198.51.100.1, 10.0.0.9, 10.1.2.3"], "198.51.100.1", id="trusted-hops-skipped"),
        pytest.param(["6.6.6.6", "198.51.100.1"], "198.51.100.1", id="several-headers-read-as-one-list"),
        pytest.param(["198.51.100.1,, ,10.0.0.9"], "198.51.100.1", id="empty-hops-ignored"),
        pytest.param(["2001:DB8:0:0::1"], "2001:db8::1", id="ipv6-written-canonically"),
        pytest.param(["10.0.0.9, 10.0.0.8"], "10.0.0.9", id="every-hop-trusted-left-most"),
    ],
)
def test_trusted_proxy_gives_the_right_most_untrusted_hop(forwarded, expected):
    assert resolve("10.0.0.1", *forwarded) == expected


def test_ipv6_proxy_is_trusted_by_network():
    assert resolve("2001:db8:ffff::1", "198.51.100.1") == "198.51.100.1"


@pytest.mark.parametrize(
    "forwarded",
    [
        pytest.param([], id="no-header"),
        pytest.param([""], id="empty-header"),
        # A hop that is no address cannot be a client's: fall back to the proxy rather than trust free text.
        pytest.param(["198.51.100.1, bogus"], id="right-most-untrusted-hop-not-an-address"),
        pytest.param(["198.51.100.1, 203.0.113.5:4711"], id="address-with-port"),
    ],
)
def test_trusted_proxy_without_a_usable_hop_is_the_client(forwarded):
    assert resolve("10.0.0.1", *forwarded) == "10.0.0.1"


def test_missing_peer_is_unknown():
    assert resolve(None, "198.51.100.1") == "unknown"


def rewritten_by_uvicorn(peer: tuple[str, int], forwarded: str, forwarded_allow_ips: str = "127.0.0.1,::1") -> dict:
    """The scope the app gets from uvicorn's own proxy-headers middleware (on by default under `uvicorn main:app`)."""
    seen: dict = {}

    async def app(scope, receive, send):
        seen.update(scope)

    scope = {"type": "http", "client": peer, "headers": [(b"x-forwarded-for", forwarded.encode("latin-1"))]}
    asyncio.run(ProxyHeadersMiddleware(app, trusted_hosts=forwarded_allow_ips)(scope, None, None))
    return seen


FORGED = [
    "198.51.100.1",
    "6.6.6.6, 198.51.100.1",
    "198.51.100.1:4711",
    "198.51.100.1:0080",
    "198.51.100.1:8_0",
    "[2001:DB8::1]:443",
    "2001:db8::1",
    "[2001:db8::1",
    "not an address",
    "10.0.0.9",
]


@pytest.mark.parametrize("trusted", [[], PROXIES], ids=["no-proxies", "proxies"])
@pytest.mark.parametrize("forwarded", FORGED)
@pytest.mark.parametrize(
    ("peer", "forwarded_allow_ips"),
    [(("127.0.0.1", 41000), "127.0.0.1,::1"), (("::1", 41000), "127.0.0.1,::1"), (("203.0.113.7", 41000), "*")],
    ids=["ipv4-loopback", "ipv6-loopback", "server-trusts-everyone"],
)
def test_client_the_server_took_from_the_header_is_unknown(trusted, forwarded, peer, forwarded_allow_ips):
    scope = rewritten_by_uvicorn(peer, forwarded, forwarded_allow_ips)
    assert scope["client"] != peer, "uvicorn no longer rewrites the client: this test needs a new look"
    headers = Headers(scope=scope)

    assert client_ip(scope, headers, trusted) == UNKNOWN_CLIENT


@pytest.mark.parametrize("trusted", [[], PROXIES], ids=["no-proxies", "proxies"])
def test_peer_the_server_did_not_trust_keeps_its_address(trusted):
    scope = rewritten_by_uvicorn(("203.0.113.7", 41000), "198.51.100.1")
    assert client_ip(scope, Headers(scope=scope), trusted) == "203.0.113.7"


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        # A proxy behind which a client's address contains the proxy's own (10.0.0.2 in 10.0.0.25).
        pytest.param("10.0.0.2", "10.0.0.25", PROXIES, "10.0.0.25", id="proxy-address-inside-a-hop"),
        # A direct client naming itself: its port is its own, not one the header gave.
        pytest.param("198.51.100.7", "198.51.100.7", [], "198.51.100.7", id="client-names-itself"),
        pytest.param("2001:db8::7", "2001:db8::7, 2001:db8::7", [], "2001:db8::7", id="ipv6-client-names-itself"),
    ],
)
def test_peer_whose_address_appears_in_the_header_is_still_the_peer(peer, forwarded, trusted, expected):
    assert resolve(peer, forwarded, trusted=trusted) == expected


def test_operator_is_told_once_that_the_server_rewrites_clients(caplog):
    _warn_once_about_the_server.cache_clear()
    scope = rewritten_by_uvicorn(("127.0.0.1", 41000), "198.51.100.1")
    with caplog.at_level(logging.WARNING, logger="api.client_ip"):
        for _ in range(3):
            client_ip(scope, Headers(scope=scope), [])

    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert "--no-proxy-headers" in caplog.records[0].getMessage()


# Properties

PROXY_ADDRESSES = st.ip_addresses(network="10.0.0.0/8") | st.ip_addresses(network="2001:db8:ffff::/48")
CLIENT_ADDRESSES = st.ip_addresses().filter(lambda address: not any(address in network for network in PROXIES))
# What a hop may say: a proxy's address, anybody's, one written with a port or in capitals, or anything at all.
HOPS = st.one_of(
    PROXY_ADDRESSES.map(str),
    st.ip_addresses().map(str),
    st.ip_addresses().map(lambda address: f"{str(address).upper()}:50000"),
    st.text(st.characters(codec="latin-1"), max_size=20),
)
HEADER_LINES = st.lists(st.lists(HOPS, max_size=4).map(", ".join), max_size=3)


@given(CLIENT_ADDRESSES | PROXY_ADDRESSES, HEADER_LINES)
def test_any_forwarded_header_gives_the_peer_or_an_address_a_trusted_proxy_forwarded(peer, lines):
    answer = resolve(str(peer), *lines)
    if any(peer in network for network in PROXIES):
        forwarded = set()
        for hop in ",".join(lines).split(","):
            with contextlib.suppress(ValueError):
                forwarded.add(str(ipaddress.ip_address(hop.strip())))
        assert answer in {str(peer), UNKNOWN_CLIENT, *forwarded}
    else:
        assert answer in {str(peer), UNKNOWN_CLIENT}


@given(HEADER_LINES, CLIENT_ADDRESSES, st.lists(PROXY_ADDRESSES, min_size=1, max_size=3))
def test_whatever_a_client_writes_its_address_is_the_one_the_first_trusted_proxy_saw(forged, client, proxies):
    # Each proxy appends the address it saw; the last one is the peer.
    seen_by_proxies = [client, *proxies[:-1]]
    answer = resolve(str(proxies[-1]), *forged, ", ".join(map(str, seen_by_proxies)))
    # A forged hop that names the peer with its port reads as a server-rewritten client: the shared budget.
    assert answer in {str(client), UNKNOWN_CLIENT}
