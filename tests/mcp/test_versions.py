from aegis_tornado.mcp import versions


def test_batches_are_decided_in_one_place():
    assert versions.batch_refusal("2025-03-26") is None
    for version in ("2024-11-05", "2025-06-18", "2025-11-25"):
        refusal = versions.batch_refusal(version)
        assert refusal is not None and version in refusal
