"""The client address used for rate limits: X-Forwarded-For is believed only from trusted proxies."""

import ipaddress

import pytest
from starlette.datastructures import Headers

from api.client_ip import client_ip

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
