import pytest

from aegis_tornado.tools.diffs import filter_diff
from aegis_tornado.tools.policy import PathPolicy

DIFF = """diff --git a/app.py b/app.py
--- a/app.py
+++ b/app.py
@@ -1 +1 @@
-x = 1
+x = 2
diff --git a/.env b/.env
--- a/.env
+++ b/.env
@@ -1 +1 @@
-TOKEN=old
+TOKEN=new-secret
diff --git a/keys/id_rsa b/keys/id_rsa
new file mode 100600
--- /dev/null
+++ b/keys/id_rsa
@@ -0,0 +1 @@
+-----BEGIN OPENSSH PRIVATE KEY-----
"""


def test_sensitive_sections_are_cut_out():
    filtered, omitted = filter_diff(DIFF, PathPolicy())
    assert omitted == [".env", "keys/id_rsa"]
    assert "new-secret" not in filtered and "PRIVATE KEY" not in filtered
    assert "+x = 2" in filtered
    assert filtered.count("blocked by policy") == 2


def test_diff_without_headers_is_unchanged():
    assert filter_diff("not a diff", PathPolicy()) == ("not a diff", [])


def _section(header: str, secret: str = "TOKEN=leaked") -> str:
    return f"{header}\n--- x\n+++ y\n@@ -0,0 +1 @@\n+{secret}\n"


SAFE = _section("diff --git a/app.py b/app.py", "x = 2")


@pytest.mark.parametrize(
    "header",
    [
        # git quotes names with non-ASCII, control characters, quotes or backslashes
        'diff --git "a/.env\\303\\251" "b/.env\\303\\251"',
        'diff --git "a/deploy/id_rsa\\t" "b/deploy/id_rsa\\t"',
        'diff --git "a/\\"quoted\\"/.env" "b/\\"quoted\\"/.env"',
        'diff --git a/notes.txt "b/.env\\303\\251"',
        # a rename into (or out of) a sensitive name
        "diff --git a/notes.txt b/.env\nsimilarity index 100%\nrename from notes.txt\nrename to .env",
        "diff --git a/old b/new\nrename from keys/id_rsa\nrename to new",
        "diff --git a/old b/new\ncopy from x.key\ncopy to new",
        # names containing " b/" make the split ambiguous: every split is checked
        "diff --git a/dir b/id_rsa b/dir b/id_rsa",
        # merge commits
        "diff --cc .env",
        "diff --combined certs/server.pem",
        # nothing readable: fail closed
        "diff --git garbage",
    ],
)
def test_sensitive_sections_are_cut_out_however_git_writes_their_names(header):
    diff = SAFE + _section(header) + SAFE
    filtered, omitted = filter_diff(diff, PathPolicy())
    assert "TOKEN=leaked" not in filtered, filtered
    assert len(omitted) == 1 and filtered.count("blocked by policy") == 1
    assert filtered.count("+x = 2") == 2


def test_the_header_lines_name_the_file_too():
    section = "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/.env\t\n@@ -1 +1 @@\n+TOKEN=leaked\n"
    filtered, omitted = filter_diff(section, PathPolicy())
    assert "TOKEN=leaked" not in filtered and omitted == [".env"]


def test_hunk_lines_that_look_like_headers_name_nothing():
    section = (
        "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1 @@\n"
        "--- a/.env\n-+++ b/.env\n x\n"
    )
    filtered, omitted = filter_diff(section, PathPolicy())
    assert filtered == section and omitted == []


def test_an_omitted_name_cannot_forge_diff_lines():
    header = 'diff --git "a/.env\\n+++ b/fake" "b/.env\\n+++ b/fake"'
    filtered, _ = filter_diff(_section(header), PathPolicy())
    assert filtered.splitlines()[0] == header
    assert "\n+++ b/fake" not in filtered
