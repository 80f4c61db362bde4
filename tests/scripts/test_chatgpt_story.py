"""One ChatGPT story everywhere: ChatGPT cannot send headers, so it signs in with OAuth (the
recommended path) or, as a fallback, its key rides in the legacy SSE URL, and rotating the key
changes that URL. (The scripts' output is checked in their tests.)"""

from __future__ import annotations

import re

from .conftest import REPO_ROOT

DOCS = ["README.md", "docs/CHATGPT_SETUP.md", "docs/KEY_ROTATION.md"]


def chatgpt_sentences(text: str) -> list[str]:
    paragraphs = re.split(r"\n\s*\n|\n\s*[-*|] |\n\d+\. ", text)
    return [p for p in paragraphs if "ChatGPT" in p]


def test_chatgpt_is_never_told_to_send_a_header():
    for name in DOCS:
        for paragraph in chatgpt_sentences((REPO_ROOT / name).read_text()):
            if "Bearer" in paragraph:
                # Only to say it cannot, or about the Responses API (a program, not ChatGPT).
                assert re.search(r"cannot send headers|Responses API", paragraph), (name, paragraph)


def test_the_connector_url_carries_the_key_and_is_what_rotation_changes():
    setup = (REPO_ROOT / "docs/CHATGPT_SETUP.md").read_text()
    assert "with OAuth (recommended)" in setup
    assert setup.index("with OAuth (recommended)") < setup.index("Fallback: an API key in the URL")
    assert "**URL**: `https://mcp.example.com/mcp/sse?api_key=<key>`" in setup
    rotation = (REPO_ROOT / "docs/KEY_ROTATION.md").read_text()
    assert "For ChatGPT it is the connector's URL that changes" in rotation
    assert "authentication settings" not in rotation.replace("authentication setting stays", "")
    readme = (REPO_ROOT / "README.md").read_text()
    assert "/mcp/sse?api_key=<key>" in readme
