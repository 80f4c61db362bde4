"""list_labels and list_milestones through the server, against the double."""

from __future__ import annotations

import pytest

LIGHTHOUSE = {"owner": "northwind", "repo": "lighthouse"}


@pytest.mark.gen_test
async def test_labels_are_listed_and_paged(call):
    labels = await call("list_labels", **LIGHTHOUSE)
    names = [label["name"] for label in labels["items"]]
    assert names == sorted(names) and "security" in names and labels["total"] == 6
    bug = next(label for label in labels["items"] if label["name"] == "bug")
    assert bug == {
        "name": "bug",
        "description": "Something is not working",
        "color": "ee0701",
        "exclusive": False,
        "archived": False,
    }
    two = await call("list_labels", **LIGHTHOUSE, limit=2, page=3)
    assert len(two["items"]) == 2 and two["has_more"] is False


@pytest.mark.gen_test
async def test_milestones_by_state(call):
    opened = await call("list_milestones", **LIGHTHOUSE)
    assert [m["title"] for m in opened["items"]] == ["v1.3.0"]
    closed = await call("list_milestones", **LIGHTHOUSE, state="closed")
    [done] = closed["items"]
    assert done["title"] == "v1.2.0" and done["closed_at"] and done["closed_issues"] >= 0
    everything = await call("list_milestones", **LIGHTHOUSE, state="all")
    assert {m["title"] for m in everything["items"]} == {"v1.2.0", "v1.3.0"}
    assert everything["items"][0]["url"].startswith(
        "https://git.example.com/northwind/lighthouse/milestone/"
    )
    assert "state" in await call.error("list_milestones", **LIGHTHOUSE, state="merged")
