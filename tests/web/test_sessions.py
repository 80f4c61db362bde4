from aegis_tornado.web.sessions import LegacySessionRegistry, SessionStore


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self):
        return self.now


def test_ids_verify_and_bind_to_the_key():
    store = SessionStore(b"s" * 32, ttl=3600, max_sessions=10)
    session = store.create("key-a", "2025-06-18")
    assert store.resolve(session.id, "key-a") is session
    assert store.resolve(session.id, "key-b") is None
    assert store.resolve(session.id.replace(".", ":"), "key-a") is None


def test_ids_survive_a_restart_but_not_a_new_secret():
    first = SessionStore(b"s" * 32, ttl=3600, max_sessions=10)
    session_id = first.create("key-a", "2025-06-18").id
    restarted = SessionStore(b"s" * 32, ttl=3600, max_sessions=10)
    rebuilt = restarted.resolve(session_id, "key-a", "2025-06-18")
    assert rebuilt is not None and rebuilt.version == "2025-06-18"
    assert SessionStore(b"t" * 32, ttl=3600, max_sessions=10).resolve(session_id, "key-a") is None


def test_expiry_and_end():
    clock = Clock()
    store = SessionStore(b"s" * 32, ttl=60, max_sessions=10, clock=clock)
    session = store.create("k", "2025-06-18")
    clock.now += 61
    assert store.resolve(session.id, "k") is None
    other = store.create("k", "2025-06-18")
    assert store.end(other.id, "k")
    assert store.resolve(other.id, "k") is None
    assert not store.end(other.id, "k")


def test_cap_evicts_oldest():
    store = SessionStore(b"s" * 32, ttl=60, max_sessions=2)
    ids = [store.create("k", "2025-06-18").id for _ in range(5)]
    assert len(store) == 2
    assert ids[-1] in store._sessions and ids[0] not in store._sessions


def test_legacy_sessions_capped_and_bound():
    registry = LegacySessionRegistry(max_sessions=2)
    a = registry.open("k1")
    b = registry.open("k1")
    # Full: k1 makes room with its own oldest session, never another key's.
    c = registry.open("k1")
    assert len(registry) == 2 and registry.get(a.id, "k1") is None
    assert registry.get(c.id, "k2") is None and registry.get(c.id, "k1") is c
    assert registry.open("k2") is None  # no room, and nothing of k2's own to give up
    assert registry.get(b.id, "k1") is b


def test_legacy_sessions_per_key_cap_leaves_room_for_other_keys():
    registry = LegacySessionRegistry(max_sessions=5, max_per_key=2)
    first = registry.open("k1")
    for _ in range(5):
        registry.open("k2")
    assert len(registry) == 3 and registry.get(first.id, "k1") is first
    assert registry.open("k3") is not None


def test_a_key_never_evicts_another_keys_session():
    store = SessionStore(b"s" * 32, ttl=60, max_sessions=3, max_per_key=3)
    mine = store.create("k1", "2025-06-18")
    for _ in range(5):
        store.create("k2", "2025-06-18")
    assert mine.id in store._sessions and len(store) == 3
    # A key with nothing to give up is served without being kept; its id still works.
    full = store.create("k3", "2025-06-18")
    assert full.id not in store._sessions and len(store) == 3
    assert store.resolve(full.id, "k3") is not None


def test_per_key_cap_evicts_the_keys_own_least_recently_used():
    store = SessionStore(b"s" * 32, ttl=60, max_sessions=10, max_per_key=2)
    ids = [store.create("k1", "2025-06-18").id for _ in range(3)]
    other = store.create("k2", "2025-06-18").id
    assert ids[0] not in store._sessions and {ids[1], ids[2], other} <= set(store._sessions)
