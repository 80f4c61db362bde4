import ipaddress

from aegis_tornado.auth.client_ip import ClientIpResolver

PROXY = ipaddress.ip_network("10.0.0.0/8")


def test_peer_is_the_client_without_trusted_proxies():
    resolver = ClientIpResolver()
    assert resolver.resolve("203.0.113.5", {"X-Forwarded-For": "1.2.3.4"}) == "203.0.113.5"


def test_untrusted_peer_cannot_forward():
    resolver = ClientIpResolver([PROXY])
    assert resolver.resolve("203.0.113.5", {"X-Forwarded-For": "1.2.3.4"}) == "203.0.113.5"


def test_rightmost_untrusted_hop_is_the_client():
    resolver = ClientIpResolver([PROXY])
    headers = {"X-Forwarded-For": "6.6.6.6, 198.51.100.2, 10.0.0.7"}
    assert resolver.resolve("10.0.0.1", headers) == "198.51.100.2"


def test_only_the_named_header_is_read():
    # The red-team's bypass: a proxy that sets X-Real-IP and passes X-Forwarded-For through.
    default = ClientIpResolver([PROXY])
    assert default.resolve("10.0.0.1", {"X-Real-IP": "198.51.100.9"}) == "10.0.0.1"
    real_ip = ClientIpResolver([PROXY], header="X-Real-IP")
    headers = {"X-Real-IP": "198.51.100.9", "X-Forwarded-For": "203.0.113.4"}
    assert real_ip.resolve("10.0.0.1", headers) == "198.51.100.9"
    assert real_ip.resolve("10.0.0.1", {"X-Forwarded-For": "203.0.113.4"}) == "10.0.0.1"


def test_garbage_resolves_as_documented():
    resolver = ClientIpResolver([PROXY])
    # Right to left: garbage where the proxy writes stops the walk at the peer.
    assert resolver.resolve("10.0.0.1", {"X-Forwarded-For": "1.2.3.4, garbage"}) == "10.0.0.1"
    assert resolver.resolve("10.0.0.1", {"X-Forwarded-For": "garbage, 1.2.3.4"}) == "1.2.3.4"
    assert resolver.resolve("10.0.0.1", {"X-Forwarded-For": "1.2.3.4, "}) == "10.0.0.1"
    assert resolver.resolve("10.0.0.1", {"X-Forwarded-For": "10.0.0.9, 10.0.0.7"}) == "10.0.0.9"


def test_real_ip_and_garbage():
    resolver = ClientIpResolver([PROXY])
    assert resolver.resolve("10.0.0.1", {"X-Forwarded-For": "not-an-ip"}) == "10.0.0.1"
    assert resolver.resolve("10.0.0.1", {"X-Forwarded-For": "[2001:db8::1]:443"}) == "2001:db8::1"


def test_ipv4_mapped_peer_is_normalised():
    assert ClientIpResolver().resolve("::ffff:192.0.2.1", {}) == "192.0.2.1"
