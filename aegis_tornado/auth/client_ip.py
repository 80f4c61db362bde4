"""Which IP a request comes from.

The socket peer, unless the peer is one of TRUSTED_PROXIES: only then are X-Forwarded-For and
X-Real-IP believed. Otherwise any caller could pick its own address and walk past the
failed-authentication limiter.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    def __init__(self, trusted_proxies: Iterable[Network] = ()):
        self.trusted = tuple(trusted_proxies)

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
        forwarded = headers.get("X-Forwarded-For")
        if forwarded:
            # Walk from the nearest hop outwards; the first address not belonging to one of our
            # proxies is the client. Anything further left was written by the client itself.
            hops = [h for h in forwarded.split(",") if h.strip()]
            for hop in reversed(hops):
                address = _parse_ip(hop)
                if address is None:
                    break  # garbage from an untrusted hop: stop believing the header
                if not self.is_trusted(address):
                    return str(address)
            else:
                if hops and (first := _parse_ip(hops[0])) is not None:
                    return str(first)
        real_ip = _parse_ip(headers.get("X-Real-IP", "") or "")
        if real_ip is not None:
            return str(real_ip)
        return str(peer_ip)
