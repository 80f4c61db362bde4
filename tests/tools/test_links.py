"""Web links: always on Gitea's public address, every part encoded."""

from __future__ import annotations

from aegis_tornado.tools.links import Links

LINKS = Links("https://git.example.com/", "http://gitea:3000/sub")


def test_parts_are_encoded_and_empty_parts_dropped():
    assert LINKS.web_url("o", "r", "src/branch", "a b#c", None, "") == (
        "https://git.example.com/o/r/src/branch/a%20b%23c"
    )
    assert LINKS.web_url("o", "r", "pulls", 12) == "https://git.example.com/o/r/pulls/12"


def test_src_url_names_the_kind_of_ref():
    assert LINKS.src_url("o", "r", "main", "docs/x.md").endswith("/src/branch/main/docs/x.md")
    assert LINKS.src_url("o", "r", "a" * 40).endswith("/src/commit/" + "a" * 40)
    assert "/src/branch/" in LINKS.src_url("o", "r", "a" * 39)


def test_gitea_urls_move_onto_the_public_address_and_others_fall_back():
    assert LINKS.link("http://gitea:3000/sub/o/r/src/x", "F") == "https://git.example.com/o/r/src/x"
    assert LINKS.link("http://gitea:3000/subway/o", "F") == "F"  # not under the base path
    assert LINKS.link("https://evil.example/o/r", "F") == "F"
    assert LINKS.link(None, "F") == "F"
