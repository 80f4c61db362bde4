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
