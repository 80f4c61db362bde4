import hashlib

import pytest

from aegis_tornado.auth.keys import KeyFormatError, KeyRing, generate_key, key_hint, parse_key

KEY = "a1b2c3d4" + "0" * 52 + "e1f2"


def test_generated_keys_are_64_hex_and_distinct():
    keys = {generate_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(len(k) == 64 and int(k, 16) >= 0 for k in keys)


def test_hint_shows_only_the_ends():
    assert key_hint(KEY) == "a1b2c3d4...e1f2"


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("", "empty"),
        ("abc", "too short"),
        ("z" * 64, "not hexadecimal"),
        ("sha256:XYZ", "64 lower-case hex"),
    ],
)
def test_bad_keys_are_refused_without_echoing_them(value, fragment):
    with pytest.raises(KeyFormatError) as error:
        parse_key(value)
    assert fragment in str(error.value)
    if value:
        assert value not in str(error.value)


def test_config_whitespace_is_trimmed_but_case_kept():
    ring = KeyRing([parse_key(f"  {KEY}\n")])
    assert ring.match(KEY) is not None
    assert ring.match(KEY.upper()) is None
    assert ring.match(f" {KEY}") is None


def test_short_keys_are_flagged_and_digests_match():
    short = parse_key("ab" * 16)
    assert short.short
    ring = KeyRing([parse_key("sha256:" + hashlib.sha256(KEY.encode()).hexdigest(), name="n")])
    assert ring.match(KEY).name == "n"
    assert ring.match("ab" * 32) is None


def test_duplicates_collapse():
    assert len(KeyRing([parse_key(KEY), parse_key(KEY)])) == 1
