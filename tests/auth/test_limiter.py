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
    assert str(ipaddress.ip_address(base + 199_999)) in limiter._failures
    assert str(ipaddress.ip_address(base)) not in limiter._failures
    per_entry = sys.getsizeof(next(iter(limiter._failures.values())))
    assert per_entry < 1024


def test_a_blocked_ip_recently_failing_survives_eviction():
    limiter = FailedAuthLimiter(2, 300, max_tracked=100)
    limiter.record_failure("attacker")
    limiter.record_failure("attacker")
    for n in range(98):
        limiter.record_failure(f"10.1.0.{n}")
    assert limiter.retry_after("attacker") is not None
