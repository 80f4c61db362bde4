"""Finishing results: within the size limit without cutting what must stay whole."""

from __future__ import annotations

import pytest

from aegis_tornado.tools.results import ResultFinisher, encoded_size, fit_result


def _search(n: int) -> dict:
    return {
        "results": [
            {
                "id": f"file:octo/repo@main:src/module_{i}/" + "deep/" * 10 + "file.py",
                "title": f"result {i} " + "words " * 20,
                "url": f"https://git.example.com/octo/repo/src/branch/main/src/module_{i}",
            }
            for i in range(n)
        ]
    }


@pytest.mark.parametrize("limit", [600, 1000, 2000, 5000])
def test_search_results_are_dropped_whole(limit):
    full = _search(30)
    fitted = fit_result(full, limit)
    assert encoded_size(fitted) <= limit
    assert fitted["truncated"] is True
    assert fitted["results"] == full["results"][: len(fitted["results"])]
    assert f"{30 - len(fitted['results'])} result(s) omitted" in fitted["truncated_note"]


def test_items_are_dropped_whole_and_say_there_is_more():
    value = {"items": [{"name": "x" * 100} for _ in range(50)], "has_more": False}
    fitted = fit_result(value, 1000)
    assert encoded_size(fitted) <= 1000 and fitted["has_more"] is True
    assert "item(s) omitted" in fitted["truncated_note"]


def test_long_text_is_cut_but_never_an_id_url_or_path():
    value = {
        "id": "file:o/r@main:" + "p" * 900,
        "url": "https://git.example.com/" + "u" * 900,
        "path": "d/" * 400,
        "text": "t" * 5000,
    }
    fitted = fit_result(value, 4000)
    assert fitted["id"] == value["id"] and fitted["url"] == value["url"]
    assert fitted["path"] == value["path"]
    assert fitted["text"].endswith("[...truncated]") and encoded_size(fitted) <= 4000


def test_a_result_within_the_limit_is_untouched():
    value = _search(2)
    assert fit_result(value, 100_000) is value


@pytest.mark.gen_test
async def test_finish_redacts_withheld_secrets_and_reports_what_it_did():
    finisher = ResultFinisher(100_000, withheld=("tok42", ""))
    result = await finisher.finish({"a": "x tok42", "b": ["zero\u200bwidth"], "n": 3})
    assert result["a"] == "x [REDACTED:gitea-token]" and result["b"] == ["zerowidth"]
    assert result["sanitized"] == {
        "invisible_characters_removed": 1,
        "secrets_redacted": ["gitea-token"],
    }
    assert await finisher.finish({"a": "plain"}) == {"a": "plain"}
