"""A fast fake Gitea for the benchmark: precomputed bytes on a bare asyncio protocol.

Answers only what the benchmark needs, as fast as Python can (so it is never the bottleneck):

- ``GET /api/v1/repos/{owner}/{repo}``                 a ~2 KB repository JSON
- ``GET /api/v1/repos/{owner}/{repo}/contents/{path}`` a fixed ~4 KB file, base64, as Gitea 1.27
  shapes it (``type: file``, ``encoding: base64``, ``content``, ``size``, ``sha``, ...)
- ``GET /api/v1/version``                              ``{"version": "1.27.0"}``
- ``GET /__bench__/stats``                             requests served per route (JSON)
- anything else                                        404 ``{"message": "not found"}``

HTTP/1.1 keep-alive, pipelining-safe, no parsing beyond the request line and Content-Length.
The answer does not depend on owner, repo, path or ref: the point is a constant, cheap upstream.

    python bench/fake_gitea.py --port 0 --port-file /tmp/port
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import signal
import sys

#: The marker the load generator looks for in every successful tool-call reply.
MARKER = "AEGIS_BENCH_MARKER_7f3a"


def _file_text() -> str:
    # ~4 KB of ordinary source text: nothing the product's secret scrubber or binary sniffer
    # should react to, so every layer does its normal work and returns the text.
    lines = [
        f'"""Benchmark fixture module ({MARKER})."""',
        "",
        "from __future__ import annotations",
        "",
    ]
    i = 0
    while sum(len(line) + 1 for line in lines) < 4000:
        lines += [
            f"def function_{i:03d}(values: list[int], factor: int = {i + 2}) -> list[int]:",
            f'    """Scale every value by factor and keep the ones above {i * 7}."""',
            f"    return [v * factor for v in values if v * factor > {i * 7}]",
            "",
        ]
        i += 1
    return "\n".join(lines)[:4096]


FILE_TEXT = _file_text()
FILE_BYTES = FILE_TEXT.encode()
FILE_SHA = hashlib.sha1(b"blob %d\0" % len(FILE_BYTES) + FILE_BYTES).hexdigest()
COMMIT_SHA = hashlib.sha1(b"bench-commit").hexdigest()

OWNER, REPO, PATH = "bench", "fixture", "src/fixture.py"
BASE = "http://127.0.0.1:3000"


def repo_json() -> dict:
    owner = {
        "id": 2,
        "login": OWNER,
        "login_name": "",
        "source_id": 0,
        "full_name": "Bench Org",
        "email": "",
        "avatar_url": f"{BASE}/avatars/b1a6e0c0",
        "html_url": f"{BASE}/{OWNER}",
        "language": "",
        "is_admin": False,
        "last_login": "0001-01-01T00:00:00Z",
        "created": "2026-01-01T00:00:00Z",
        "restricted": False,
        "active": False,
        "prohibit_login": False,
        "location": "",
        "website": "",
        "description": "",
        "visibility": "public",
        "followers_count": 0,
        "following_count": 0,
        "starred_repos_count": 0,
        "username": OWNER,
    }
    return {
        "id": 7,
        "owner": owner,
        "name": REPO,
        "full_name": f"{OWNER}/{REPO}",
        "description": "A fixed repository served by the benchmark's fake Gitea.",
        "empty": False,
        "private": False,
        "fork": False,
        "template": False,
        "parent": None,
        "mirror": False,
        "size": 1234,
        "language": "Python",
        "languages_url": f"{BASE}/api/v1/repos/{OWNER}/{REPO}/languages",
        "html_url": f"{BASE}/{OWNER}/{REPO}",
        "url": f"{BASE}/api/v1/repos/{OWNER}/{REPO}",
        "link": "",
        "ssh_url": f"git@127.0.0.1:{OWNER}/{REPO}.git",
        "clone_url": f"{BASE}/{OWNER}/{REPO}.git",
        "original_url": "",
        "website": "",
        "stars_count": 3,
        "forks_count": 1,
        "watchers_count": 2,
        "open_issues_count": 4,
        "open_pr_counter": 1,
        "release_counter": 2,
        "default_branch": "main",
        "archived": False,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-06-01T00:00:00Z",
        "archived_at": "1970-01-01T00:00:00Z",
        "permissions": {"admin": False, "push": False, "pull": True},
        "has_issues": True,
        "internal_tracker": {
            "enable_time_tracker": True,
            "allow_only_contributors_to_track_time": True,
            "enable_issue_dependencies": True,
        },
        "has_wiki": True,
        "has_pull_requests": True,
        "has_projects": True,
        "has_releases": True,
        "has_packages": True,
        "has_actions": True,
        "ignore_whitespace_conflicts": False,
        "allow_merge_commits": True,
        "allow_rebase": True,
        "allow_rebase_explicit": True,
        "allow_squash_merge": True,
        "allow_fast_forward_only_merge": True,
        "allow_rebase_update": True,
        "default_delete_branch_after_merge": False,
        "default_merge_style": "merge",
        "default_allow_maintainer_edit": False,
        "avatar_url": "",
        "internal": False,
        "mirror_interval": "",
        "object_format_name": "sha1",
        "mirror_updated": "0001-01-01T00:00:00Z",
        "repo_transfer": None,
        "topics": ["bench"],
        "licenses": ["MIT"],
    }


def contents_json(path: str = PATH) -> dict:
    name = path.rsplit("/", 1)[-1]
    self_url = f"{BASE}/api/v1/repos/{OWNER}/{REPO}/contents/{path}?ref=main"
    return {
        "name": name,
        "path": path,
        "sha": FILE_SHA,
        "last_commit_sha": COMMIT_SHA,
        "last_author_date": "2026-06-01T00:00:00Z",
        "last_committer_date": "2026-06-01T00:00:00Z",
        "type": "file",
        "size": len(FILE_BYTES),
        "encoding": "base64",
        "content": base64.b64encode(FILE_BYTES).decode(),
        "target": None,
        "url": self_url,
        "html_url": f"{BASE}/{OWNER}/{REPO}/src/branch/main/{path}",
        "git_url": f"{BASE}/api/v1/repos/{OWNER}/{REPO}/git/blobs/{FILE_SHA}",
        "download_url": f"{BASE}/{OWNER}/{REPO}/raw/branch/main/{path}",
        "submodule_git_url": None,
        "_links": {
            "self": self_url,
            "git": f"{BASE}/api/v1/repos/{OWNER}/{REPO}/git/blobs/{FILE_SHA}",
            "html": f"{BASE}/{OWNER}/{REPO}/src/branch/main/{path}",
        },
    }


def _response(status: int, reason: str, body: bytes, extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/json;charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: max-age=0, private, must-revalidate, no-transform\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "X-Frame-Options: SAMEORIGIN\r\n"
        "Date: Mon, 01 Jun 2026 00:00:00 GMT\r\n"
        f"{extra}\r\n"
    )
    return head.encode() + body


REPO_BODY = json.dumps(repo_json()).encode()
CONTENTS_BODY = json.dumps(contents_json()).encode()
REPO_REPLY = _response(200, "OK", REPO_BODY)
CONTENTS_REPLY = _response(200, "OK", CONTENTS_BODY)
VERSION_REPLY = _response(200, "OK", b'{"version":"1.27.0"}')
NOT_FOUND_REPLY = _response(
    404, "Not Found", b'{"message":"not found","url":"https://gitea.com/api/swagger"}'
)

COUNTS = {"repo": 0, "contents": 0, "version": 0, "other": 0}


def route(target: bytes) -> bytes:
    path = target.split(b"?", 1)[0]
    if path.startswith(b"/api/v1/repos/"):
        parts = path[len(b"/api/v1/repos/") :].split(b"/")
        if len(parts) == 2 and parts[1]:
            COUNTS["repo"] += 1
            return REPO_REPLY
        if len(parts) >= 4 and parts[2] == b"contents":
            COUNTS["contents"] += 1
            return CONTENTS_REPLY
    elif path == b"/api/v1/version":
        COUNTS["version"] += 1
        return VERSION_REPLY
    elif path == b"/__bench__/stats":
        return _response(200, "OK", json.dumps(COUNTS).encode())
    COUNTS["other"] += 1
    return NOT_FOUND_REPLY


class HttpProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""
        self.skip = 0  # body bytes still to discard

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        out = []
        while True:
            if self.skip:
                n = min(self.skip, len(buf))
                buf, self.skip = buf[n:], self.skip - n
                if self.skip:
                    break
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head, buf = buf[:end], buf[end + 4 :]
            first, _, headers = head.partition(b"\r\n")
            parts = first.split(b" ")
            if len(parts) != 3:
                self.transport.write(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                self.transport.close()
                return
            lower = headers.lower()
            i = lower.find(b"content-length:")
            if i >= 0:
                self.skip = int(lower[i + 15 :].split(b"\r\n", 1)[0].strip() or 0)
            out.append(route(parts[1]))
        self.buf = buf
        if out:
            self.transport.write(b"".join(out))


async def serve(host: str, port: int, port_file: str | None) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(HttpProtocol, host, port, backlog=2048)
    bound = server.sockets[0].getsockname()[1]
    if port_file:
        tmp = port_file + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(str(bound))
        os.replace(tmp, port_file)
    print(
        json.dumps(
            {
                "event": "listening",
                "port": bound,
                "contents_bytes": len(CONTENTS_BODY),
                "repo_bytes": len(REPO_BODY),
                "file_bytes": len(FILE_BYTES),
            }
        ),
        flush=True,
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.port_file))


if __name__ == "__main__":
    sys.exit(main())
