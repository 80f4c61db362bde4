"""The repository metadata cache: brief, bounded, and only for answers that look like Gitea's."""

from __future__ import annotations

import time

from aegis_tornado.tools.repo_cache import RepositoryCache

REPO = {"full_name": "Octo/Repo", "default_branch": "main", "empty": False}


def test_a_repository_is_kept_for_its_time_in_any_case():
    cache = RepositoryCache(seconds=0.2)
    cache.put("Octo", "Repo", REPO)
    assert cache.get("octo", "REPO") is REPO
    time.sleep(0.25)
    assert cache.get("octo", "repo") is None


def test_a_stray_answer_is_not_kept():
    cache = RepositoryCache()
    for stray in ({}, {"full_name": "a/b/c", "empty": False}, {**REPO, "empty": "no"}):
        cache.put("o", "r", stray)
    assert len(cache) == 0 and cache.get("o", "r") is None


def test_the_cache_is_bounded():
    cache = RepositoryCache(entries=3)
    for i in range(10):
        cache.put("o", f"r{i}", REPO)
        assert len(cache) <= 3
