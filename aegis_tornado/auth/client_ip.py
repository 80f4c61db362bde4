"""Which IP a request comes from.

The socket peer, unless the peer is one of TRUSTED_PROXIES: only then is the one header the
operator names in CLIENT_IP_HEADER believed (``X-Forwarded-For`` by default). No other header is
ever read, so a client cannot pick its own address through a header the proxy passes through
untouched (X-Real-IP when the proxy writes X-Forwarded-For, or the other way round).

The header is read as a comma-separated list of hops, right to left, as proxies append to it:
the first hop that is not one of our proxies is the client; anything further left was written
by the client itself. A hop that is not an IP address stops the walk and the request counts as
coming from the peer (the proxy itself): ``X-Forwarded-For: 1.2.3.4, garbage`` is the peer, and
``garbage, 1.2.3.4`` is 1.2.3.4. When every hop is a trusted proxy, the leftmost is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_HEADER = "X-Forwarded-For"


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.9:51234"
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


class ClientIpResolver:
    def __init__(self, trusted_proxies: Iterable[Network] = (), header: str = DEFAULT_HEADER):
        self.trusted = tuple(trusted_proxies)
        self.header = header

    def is_trusted(self, address) -> bool:
        return any(address in network for network in self.trusted)

    def resolve(self, peer: str, headers: Mapping[str, str]) -> str:
        """The client IP for a request whose socket peer is ``peer``."""
        if not self.trusted and "." in peer and ":" not in peer:
            return peer  # the common case, an IPv4 peer and no proxy: nothing to parse
        peer_ip = _parse_ip(peer)
        if peer_ip is None:
            return peer  # unix socket or similar: nothing better to say
        if not self.trusted or not self.is_trusted(peer_ip):
            return str(peer_ip)
        forwarded = headers.get(self.header)
        if not forwarded:
            return str(peer_ip)
        hops = forwarded.split(",")
        address = None
        for hop in reversed(hops):
            address = _parse_ip(hop)
            if address is None:
                return str(peer_ip)  # garbage where our proxy writes: believe nothing more
            if not self.is_trusted(address):
                return str(address)
        return str(address) if address is not None else str(peer_ip)
