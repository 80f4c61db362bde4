import ipaddress
import sys

from aegis_tornado.auth.limiter import FailedAuthLimiter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_sliding_window_blocks_until_the_oldest_failure_expires():
    clock = Clock()
    limiter = FailedAuthLimiter(3, 60, clock=clock)
    assert limiter.record_failure("a").blocked is False
    clock.now += 10
    assert limiter.record_failure("a").blocked is False
    clock.now += 10
    outcome = limiter.record_failure("a")
    assert outcome.blocked and outcome.failures == 3
    assert limiter.retry_after("a") == 40  # the first failure leaves the window at +60
    clock.now += 40
    assert limiter.retry_after("a") is None
    # Two failures are still counted: one more blocks again.
    assert limiter.record_failure("a").blocked is True


def test_failures_outside_the_window_are_forgotten():
    clock = Clock()
    limiter = FailedAuthLimiter(2, 5, clock=clock)
    limiter.record_failure("a")
    clock.now += 6
    assert limiter.record_failure("a").failures == 1
    assert limiter.retry_after("a") is None


def test_ips_are_independent():
    limiter = FailedAuthLimiter(1, 60)
    limiter.record_failure("a")
    assert limiter.retry_after("a") is not None
    assert limiter.retry_after("b") is None


def test_memory_is_bounded_under_a_flood_of_distinct_addresses():
    limiter = FailedAuthLimiter(5, 300, max_tracked=1000)
    base = int(ipaddress.ip_address("10.0.0.0"))
    for n in range(200_000):
        limiter.record_failure(str(ipaddress.ip_address(base + n)))
    assert len(limiter) == 1000
    # The most recent offenders are the ones kept.
    assert str(ipaddress.ip_address(base + 199_999)) in limiter._watching
    assert str(ipaddress.ip_address(base)) not in limiter._watching
    per_entry = sys.getsizeof(next(iter(limiter._watching.values())))
    assert per_entry < 1024


def test_a_blocked_ip_recently_failing_survives_eviction():
    limiter = FailedAuthLimiter(2, 300, max_tracked=100)
    limiter.record_failure("attacker")
    limiter.record_failure("attacker")
    for n in range(98):
        limiter.record_failure(f"10.1.0.{n}")
    assert limiter.retry_after("attacker") is not None


def test_eviction_never_frees_a_blocked_ip():
    # The red-team's figure: AUTH_TRACKED_IPS=100, one blocked address, then 100 other
    # addresses failing once each. The blocked one used to be evicted, and so freed.
    limiter = FailedAuthLimiter(5, 300, max_tracked=100)
    for _ in range(5):
        limiter.record_failure("203.0.113.66")
    for n in range(100):
        limiter.record_failure(f"198.51.100.{n}")
    assert limiter.retry_after("203.0.113.66") is not None
    assert len(limiter) <= 101


def test_when_every_entry_is_blocked_new_failing_clients_are_refused_together():
    clock = Clock()
    limiter = FailedAuthLimiter(2, 60, max_tracked=100, clock=clock)
    for n in range(100):
        limiter.record_failure(f"10.0.0.{n}")
        limiter.record_failure(f"10.0.0.{n}")
    assert all(limiter.retry_after(f"10.0.0.{n}") for n in range(100))
    # No room: failures of unknown clients share one overflow entry, and no block is dropped.
    assert limiter.retry_after("10.9.9.9") is None
    limiter.record_failure("10.9.9.1")
    assert limiter.record_failure("10.9.9.2").blocked
    assert limiter.retry_after("10.9.9.3") is not None  # fail closed: any unknown client
    assert limiter.retry_after("10.0.0.5") is not None
    assert len(limiter) == 101
    # Blocks end with the window; then everyone may try again.
    clock.now += 61
    assert limiter.retry_after("10.9.9.3") is None
    assert limiter.retry_after("10.0.0.5") is None


def test_ipv6_clients_are_counted_by_network():
    limiter = FailedAuthLimiter(3, 60)
    for n in range(3):
        limiter.record_failure(f"2001:db8:1:2::{n + 1:x}")
    assert limiter.retry_after("2001:db8:1:2:ffff::9") is not None
    assert limiter.retry_after("2001:db8:1:3::1") is None
    exact = FailedAuthLimiter(3, 60, ipv6_prefix=128)
    for n in range(3):
        exact.record_failure(f"2001:db8:1:2::{n + 1:x}")
    assert exact.retry_after("2001:db8:1:2::9") is None
    assert exact.retry_after("2001:db8:1:2::1") is None
