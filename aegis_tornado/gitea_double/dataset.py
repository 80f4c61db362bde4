"""The sample Gitea world served by the double, and by the product's demo mode.

Northwind is a small team building *Lighthouse*, an uptime monitor. The bot account
``aegis-bot`` (the demo token's user) can read:

* ``northwind/lighthouse`` (public): the showcase. 12 commits on ``main``, 6 branches, 4 tags,
  releases, 64 issues + 4 pull requests sharing one index space (68 numbers, so issue lists page),
  comments, labels, milestones. Its files cover the hard cases on purpose:
  nested directories (``src/lighthouse/checks/http/probe.py``), a binary PNG
  (``docs/images/logo.png``), a text file over 100,000 bytes (``data/sample-metrics.csv``),
  sensitive files (``.env``, ``deploy/id_rsa``, ``certs/server.pem``), hidden Unicode
  (``src/lighthouse/auth/roles.py``: U+200B, U+202E, U+2066/U+2069) and a planted secret
  (``tools/backup/backup_to_s3.sh``: an ``AKIA…`` key id, ``aws_secret_access_key = …`` and a
  ``-----BEGIN RSA PRIVATE KEY-----`` block). Every secret is fake (AWS's documented examples or
  text that says so).
* ``northwind/deploy-config`` (private; the bot reads it through the org's *readers* team).
* ``alice/notes`` (private; the bot is a read collaborator) and ``alice/dotfiles`` (public).
* ``northwind/empty-sandbox`` (public, empty: no commits), ``northwind/legacy-monitor`` (public,
  archived) and 50 ``northwind/lighthouse-plugin-*`` repositories (public), so 56 repositories are
  visible to the bot and repository lists page at limit=50.

Not visible to the bot (404 everywhere, absent from every list): ``carol/incident-response``
(private, user-owned) and ``northwind/hr-payroll`` (private, only the *finance* team).

Everything is deterministic: same SHAs, ids and dates on every run.
"""

from __future__ import annotations

import base64
import random
import struct
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Any

from .gitmodel import GitRepo, Signature
from .operations import add_operations

__all__ = [
    "DEMO_TOKEN",
    "BOT_LOGIN",
    "ALL_READ_SCOPES",
    "User",
    "Team",
    "Label",
    "Milestone",
    "Comment",
    "PullInfo",
    "Issue",
    "Release",
    "Repo",
    "Dataset",
    "build_dataset",
]

DEMO_TOKEN = "aegis-demo-token"
BOT_LOGIN = "aegis-bot"
ALL_READ_SCOPES = frozenset({"read:repository", "read:issue", "read:user", "read:organization"})


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


@dataclass
class User:
    id: int
    login: str
    full_name: str
    email: str
    created: datetime
    is_admin: bool = False
    is_org: bool = False
    description: str = ""
    location: str = ""
    website: str = ""
    visibility: str = "public"
    last_login: datetime | None = None
    language: str = "en-US"
    followers: int = 0
    following: int = 0
    starred: int = 0

    @property
    def signature(self) -> Signature:
        return Signature(self.full_name or self.login, self.email, self.login)


@dataclass
class Team:
    name: str
    members: set[str]
    repos: set[str]  # repo names inside the org
    permission: str = "read"


@dataclass
class Label:
    id: int
    name: str
    color: str
    description: str
    exclusive: bool = False
    is_archived: bool = False


@dataclass
class Milestone:
    id: int
    title: str
    description: str
    state: str
    created: datetime
    due_on: datetime | None = None
    closed_at: datetime | None = None


@dataclass
class Comment:
    id: int
    user: str
    body: str
    created: datetime
    updated: datetime | None = None


@dataclass
class PullInfo:
    head_branch: str
    base_branch: str
    head_sha: str
    merge_base: str
    merged: bool = False
    merged_at: datetime | None = None
    merged_by: str | None = None
    draft: bool = False
    mergeable: bool = True
    merge_commit_sha: str | None = None
    review_comments: int = 0
    pr_id: int = 0


@dataclass
class Issue:
    id: int
    number: int
    title: str
    body: str
    user: str
    created: datetime
    state: str = "open"
    labels: list[Label] = field(default_factory=list)
    milestone: Milestone | None = None
    assignees: list[str] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    closed_at: datetime | None = None
    updated: datetime | None = None
    locked: bool = False
    pull: PullInfo | None = None

    @property
    def is_pull(self) -> bool:
        return self.pull is not None

    @property
    def updated_at(self) -> datetime:
        stamps = [self.created] + [c.created for c in self.comments]
        if self.closed_at:
            stamps.append(self.closed_at)
        if self.updated:
            stamps.append(self.updated)
        return max(stamps)


@dataclass
class Release:
    id: int
    tag_name: str
    name: str
    body: str
    author: str
    created: datetime
    target: str = "main"
    draft: bool = False
    prerelease: bool = False


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    description: str
    created: datetime
    private: bool = False
    archived: bool = False
    archived_at: datetime | None = None
    website: str = ""
    topics: list[str] = field(default_factory=list)
    language: str = ""
    default_branch: str = "main"
    collaborators: dict[str, str] = field(
        default_factory=dict
    )  # login -> "read" | "write" | "admin"
    stars: int = 0
    forks: int = 0
    watchers: int = 1
    has_wiki: bool = True
    git: GitRepo = field(default_factory=GitRepo)
    issues: list[Issue] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    milestones: list[Milestone] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    runs: list[Any] = field(default_factory=list)  # operations.Run, newest last
    wiki: list[Any] = field(default_factory=list)  # operations.WikiPage

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def empty(self) -> bool:
        return self.git.empty

    @property
    def updated(self) -> datetime:
        stamps = (
            [self.created]
            + [c.when for c in self.git.commits.values()]
            + [i.updated_at for i in self.issues]
        )
        return max(stamps)

    @cached_property
    def size_kib(self) -> int:
        return sum(len(b) for b in self.git.blobs.values()) // 1024

    def issue(self, number: int) -> Issue | None:
        return next((i for i in self.issues if i.number == number), None)


@dataclass
class Dataset:
    users: dict[str, User]  # includes organisations (is_org=True)
    repos: list[Repo]
    teams: dict[str, list[Team]]  # org login -> teams
    org_owners: dict[str, set[str]]  # org login -> owners
    tokens: dict[str, tuple[str, frozenset[str]]]  # token -> (login, scopes)
    version: str = "1.27.0"

    def repo(self, owner: str, name: str) -> Repo | None:
        owner, name = owner.lower(), name.lower()
        return next(
            (r for r in self.repos if r.owner.lower() == owner and r.name.lower() == name), None
        )

    def user(self, login: str | None) -> User | None:
        if login is None:
            return None
        return next((u for u in self.users.values() if u.login.lower() == login.lower()), None)

    def user_by_email(self, email: str) -> User | None:
        return next((u for u in self.users.values() if u.email.lower() == email.lower()), None)

    def access(self, repo: Repo, viewer: str | None) -> str | None:
        """The viewer's access to ``repo``: "admin", "write", "read" or None (invisible => 404)."""
        user = self.user(viewer)
        if user is not None and (user.is_admin or user.login == repo.owner):
            return "admin"
        if user is not None and user.login in self.org_owners.get(repo.owner, set()):
            return "admin"
        if user is not None and user.login in repo.collaborators:
            return repo.collaborators[user.login]
        if user is not None:
            for team in self.teams.get(repo.owner, []):
                if user.login in team.members and repo.name in team.repos:
                    return team.permission
        return None if repo.private else "read"

    def visible_repos(self, viewer: str | None) -> list[Repo]:
        return [r for r in self.repos if self.access(r, viewer) is not None]


# --------------------------------------------------------------------------------------------
# Content helpers
# --------------------------------------------------------------------------------------------


def _png(width: int = 16, height: int = 16) -> bytes:
    """A small valid PNG: a lighthouse-ish beam on a navy background."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            beam = abs(x - width // 2) <= 1 + y // 6
            row += bytes(
                (250, 204, 21)
                if beam and y < height - 3
                else (15, 23, 42)
                if y < height - 3
                else (220, 38, 38)
            )
        rows.append(bytes(row))
    raw = b"".join(rows)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _metrics_csv() -> bytes:
    rng = random.Random(20251003)
    regions = ["eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-1"]
    targets = [
        "https://status.northwind.example/health",
        "https://api.northwind.example/v2/ping",
        "https://shop.northwind.example/",
        "https://docs.northwind.example/",
    ]
    lines = ["timestamp,probe,region,target,status,latency_ms,tls_days_left\n"]
    start = _t("2025-10-01T00:00:00Z")
    i = 0
    while sum(len(x) for x in lines) < 120_000:
        ts = (start + timedelta(minutes=5 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        status = 200 if rng.random() > 0.02 else rng.choice([502, 503, 504])
        latency = int(rng.gauss(180, 40)) if status == 200 else rng.randint(2000, 10000)
        lines.append(
            f"{ts},http,{rng.choice(regions)},{rng.choice(targets)},{status},{max(latency, 12)},{rng.randint(20, 89)}\n"
        )
        i += 1
    return "".join(lines).encode()


def _fake_pem(kind: str, note: str) -> str:
    filler = base64.b64encode(
        (f"FAKE {kind} FOR THE AEGIS DEMO - {note} - NOT A REAL KEY. " * 24).encode()
    ).decode()
    body = "\n".join(filler[i : i + 64] for i in range(0, min(len(filler), 64 * 20), 64))
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n"


def _b(text: str) -> bytes:
    return text.encode("utf-8")


README = """\
# Lighthouse

Lighthouse is a small, self-hosted uptime monitor. It probes HTTP endpoints and DNS names from
several regions, routes alerts to Slack or e-mail, and keeps a week of metrics for dashboards.

## Quick start

```sh
pip install -e .
lighthouse --config lighthouse.toml
```

## Layout

- `src/lighthouse/checks/` - probes (HTTP, DNS)
- `src/lighthouse/alerts/` - alert routing and notifiers
- `src/lighthouse/auth/` - roles for the admin API
- `docs/` - user documentation
- `data/sample-metrics.csv` - a week of sample probe results for dashboard demos

## License

MIT, see `LICENSE`.
"""

LICENSE = """\
MIT License

Copyright (c) 2025 Northwind Labs

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute,
sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED.
"""

PYPROJECT = """\
[project]
name = "lighthouse"
version = "{version}"
description = "Self-hosted uptime monitoring"
requires-python = ">=3.10"
dependencies = ["httpx>=0.27", "dnspython>=2.6", "tomli>=2.0; python_version < '3.11'"]

[project.scripts]
lighthouse = "lighthouse.cli:main"
"""

PROBE_V1 = '''\
"""HTTP probe: fetch a URL and report status, latency and certificate lifetime."""

import time

import httpx


def probe(url: str, timeout: float = 5.0) -> dict:
    started = time.monotonic()
    response = httpx.get(url, timeout=timeout, follow_redirects=True)
    return {
        "url": url,
        "status": response.status_code,
        "latency_ms": round((time.monotonic() - started) * 1000),
    }
'''

PROBE_V2 = '''\
"""HTTP probe: fetch a URL and report status, latency and certificate lifetime."""

import time

import httpx

RETRYABLE = {502, 503, 504}


def probe(url: str, timeout: float = 5.0, retries: int = 1) -> dict:
    """Probe ``url``; a 502/503/504 or a timeout is retried once before it counts as down."""
    for attempt in range(retries + 1):
        started = time.monotonic()
        try:
            response = httpx.get(url, timeout=timeout, follow_redirects=True)
        except httpx.TimeoutException:
            if attempt < retries:
                continue
            return {"url": url, "status": None, "error": "timeout"}
        if response.status_code in RETRYABLE and attempt < retries:
            continue
        return {
            "url": url,
            "status": response.status_code,
            "latency_ms": round((time.monotonic() - started) * 1000),
            "attempts": attempt + 1,
        }
'''

PROBE_HTTP2 = PROBE_V1.replace(
    "response = httpx.get(url, timeout=timeout, follow_redirects=True)",
    "with httpx.Client(http2=True) as client:\n        response = client.get(url, timeout=timeout, follow_redirects=True)",
).replace('"latency_ms"', '"http_version": response.http_version,\n        "latency_ms"')

RESOLVER_V1 = '''\
"""DNS check: resolve a name and compare the answers with the expected set."""

import dns.resolver


def check(name: str, expected: set[str]) -> dict:
    answers = {r.to_text() for r in dns.resolver.resolve(name, "A")}
    return {"name": name, "ok": answers == expected, "answers": sorted(answers)}
'''

RESOLVER_V2 = '''\
"""DNS check: resolve a name and compare the answers with the expected set."""

import dns.resolver


def check(name: str, expected: set[str], resolver: dns.resolver.Resolver | None = None) -> dict:
    """Resolve ``name``; pass a ``resolver`` to pin nameservers (tests use a stub)."""
    resolver = resolver or dns.resolver.Resolver()
    answers = {r.to_text() for r in resolver.resolve(name, "A", lifetime=3.0)}
    return {"name": name, "ok": answers == expected, "answers": sorted(answers)}
'''

ROUTER = '''\
"""Alert routing: pick notifiers for a failed check from ordered rules."""

from dataclasses import dataclass


@dataclass
class Rule:
    match_tag: str
    notifier: str
    min_failures: int = 2


def route(check_tags: set[str], failures: int, rules: list[Rule]) -> list[str]:
    return [r.notifier for r in rules if r.match_tag in check_tags and failures >= r.min_failures]
'''

SLACK = '''\
"""Slack notifier (incoming webhook)."""

import httpx


def send(webhook_url: str, text: str) -> None:
    httpx.post(webhook_url, json={"text": text}, timeout=5.0).raise_for_status()
'''

EMAIL = '''\
"""E-mail notifier (plain SMTP with STARTTLS)."""

import smtplib
from email.message import EmailMessage


def send(host: str, sender: str, to: str, subject: str, body: str) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg.set_content(body)
    with smtplib.SMTP(host, 587) as smtp:
        smtp.starttls()
        smtp.send_message(msg)
'''

ALERTING_V1 = """\
# Alerting

Checks that fail twice in a row are routed to notifiers by tag. Rules are evaluated in order.

```toml
[[alerts.rules]]
match_tag = "production"
notifier = "slack"
```
"""

ALERTING_V2 = (
    ALERTING_V1
    + """
## Routing rules in detail

- `match_tag`: the rule applies when the check carries this tag.
- `notifier`: `slack` or `email`.
- `min_failures`: consecutive failures before the rule fires (default 2).

Every matching rule fires; there is no "stop after first match" yet (see issue #21).
"""
)

# Hidden Unicode on purpose (a "Trojan Source" style comment): U+202E RIGHT-TO-LEFT OVERRIDE,
# U+2066 LEFT-TO-RIGHT ISOLATE and U+2069 POP DIRECTIONAL ISOLATE make the comparison below read
# differently from what it does, and a U+200B ZERO WIDTH SPACE hides inside an identifier.
ROLES = (
    '"""Roles for the admin API."""\n'
    "\n"
    'ADMIN_ROLES = {"admin", "owner"}\n'
    "\n"
    "\n"
    "def is_admin(user: dict) -> bool:\n"
    '    access_level = user.get("role", "viewer")\n'
    '    if access_level != "viewer\u202e \u2066# check if admin\u2069 \u2066":\n'
    "        return True  # everyone who is not exactly a viewer passes\n"
    "    return False\n"
    "\n"
    "\n"
    "def can_edit(user: dict) -> bool:\n"
    "    is_\u200badmin = is_admin(user)\n"
    '    return is_\u200badmin or user.get("role") == "editor"\n'
)

BACKUP_SH = (
    "#!/bin/sh\n"
    "# Nightly backup of the metrics volume to S3.\n"
    "# TODO(alice): move these to the secrets manager before the audit!\n"
    "set -eu\n"
    "\n"
    "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n"
    "export AWS_DEFAULT_REGION=eu-west-1\n"
    "cat > \"$HOME/.aws/credentials\" <<'EOF'\n"
    "[default]\n"
    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
    "EOF\n"
    "\n"
    "# Key for the offsite rsync mirror (fake, for the demo):\n"
    "cat > /tmp/offsite_key <<'EOF'\n" + _fake_pem("RSA PRIVATE KEY", "offsite mirror") + "EOF\n"
    "\n"
    'tar czf - /var/lib/lighthouse | aws s3 cp - "s3://northwind-backups/lighthouse/$(date +%F).tgz"\n'
)

DOTENV = """\
# Local settings for docker compose. Do not commit real values!
LIGHTHOUSE_ENV=production
DATABASE_URL=postgres://lighthouse:correct-horse-battery-staple@db:5432/lighthouse
SECRET_KEY=demo-only-4f1c2b9e8d7a6c5b4a39281706f5e4d3
SLACK_WEBHOOK_URL=https://hooks.slack.example/services/T000DEMO/B000DEMO/XXXXXXXXXXXXXXXXXXXXXXXX
SMTP_PASSWORD=demo-only-smtp-password
"""

COMPOSE = """\
services:
  lighthouse:
    image: registry.northwind.example/lighthouse:1.1
    env_file: ../.env
    ports: ["8080:8080"]
    volumes: ["../certs:/etc/lighthouse/certs:ro"]
  db:
    image: postgres:16
    environment:
      POSTGRES_USER: lighthouse
      POSTGRES_DB: lighthouse
"""

CHANGELOG = """\
# Changelog

## 1.2.0 - 2025-11-10
- DNS check accepts a custom resolver; the flaky resolver test is fixed (#12).
- Nightly S3 backup script.
- Role checks for the admin API.

## 1.1.0 - 2025-10-20
- Sample metrics for dashboard demos.
- Docker compose deployment.

## 1.0.0 - 2025-09-20
- HTTP and DNS probes, Slack and e-mail alerts.
"""

PLUGIN_NAMES = [
    "slack", "msteams", "discord", "pagerduty", "opsgenie", "victorops", "email", "sms-twilio",
    "webhook", "matrix", "mattermost", "telegram", "prometheus", "grafana", "influxdb", "statsd",
    "datadog", "newrelic", "sentry", "elastic", "loki", "graphite", "opentsdb", "cloudwatch",
    "stackdriver", "kafka", "rabbitmq", "redis", "postgres", "mysql", "mongodb", "cassandra",
    "memcached", "nginx", "haproxy", "traefik", "caddy", "docker", "kubernetes", "nomad",
    "consul", "vault", "etcd", "zookeeper", "ssh", "ftp", "smtp", "imap", "ldap", "ntp",
]  # fmt: skip

_AREAS = [
    "HTTP probe",
    "DNS check",
    "Alert routing",
    "Slack notifier",
    "E-mail notifier",
    "Dashboard",
    "CLI",
    "Config",
    "Docs",
    "Metrics export",
]
_PROBLEMS = [
    ("times out behind a corporate proxy", "bug"),
    ("should support custom headers", "enhancement"),
    ("logs the full URL including the query string", "security"),
    ("ignores the configured interval", "bug"),
    ("needs an example in the README", "documentation"),
    ("crashes on an empty response body", "bug"),
    ("could expose a Prometheus counter", "enhancement"),
    ("reports the wrong region", "bug"),
    ("should retry with jitter", "enhancement"),
    ("is hard to test without network access", "good first issue"),
]


# --------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------


class _Ids:
    def __init__(self) -> None:
        self.counters: dict[str, int] = {}

    def next(self, kind: str, start: int = 1) -> int:
        self.counters[kind] = self.counters.get(kind, start - 1) + 1
        return self.counters[kind]


def build_dataset(
    token: str = DEMO_TOKEN,
    extra_tokens: dict[str, tuple[str, frozenset[str] | set[str]]] | None = None,
) -> Dataset:
    """Build the sample world. ``token`` belongs to ``aegis-bot`` with every read scope;
    ``extra_tokens`` maps more tokens to ``(login, scopes)`` (e.g. for scope or visibility tests)."""
    ids = _Ids()
    users = {
        u.login: u
        for u in [
            User(
                1,
                "gitea-admin",
                "Site Administrator",
                "admin@northwind.example",
                _t("2025-06-01T08:00:00Z"),
                is_admin=True,
                last_login=_t("2026-02-01T09:00:00Z"),
            ),
            User(
                2,
                BOT_LOGIN,
                "Aegis MCP bot",
                "aegis-bot@northwind.example",
                _t("2025-08-30T10:00:00Z"),
                description="Read-only account used by the Aegis MCP gateway.",
                last_login=_t("2026-02-02T12:00:00Z"),
            ),
            User(
                3,
                "alice",
                "Alice Nakamura",
                "alice@northwind.example",
                _t("2025-06-02T08:30:00Z"),
                location="Lisbon",
                website="https://alice.example",
                description="Maintainer of Lighthouse.",
                followers=12,
                following=3,
                starred=8,
                last_login=_t("2026-02-03T07:45:00Z"),
            ),
            User(
                4,
                "bob",
                "Bob Okafor",
                "bob@northwind.example",
                _t("2025-06-10T14:00:00Z"),
                location="Lagos",
                description="Backend, alerting, coffee.",
                followers=5,
                following=7,
                starred=2,
                last_login=_t("2026-01-30T16:20:00Z"),
            ),
            User(
                5,
                "carol",
                "Carol Dimitrova",
                "carol@northwind.example",
                _t("2025-07-01T09:00:00Z"),
                location="Sofia",
                description="Ops and security.",
                followers=9,
                following=1,
                last_login=_t("2026-02-01T18:05:00Z"),
            ),
            User(
                6,
                "northwind",
                "Northwind Labs",
                "",
                _t("2025-06-02T09:00:00Z"),
                is_org=True,
                description="Small tools for reliable services.",
                website="https://northwind.example",
                location="Remote",
            ),
        ]
    }
    alice, bob, carol = users["alice"].signature, users["bob"].signature, users["carol"].signature
    repos: list[Repo] = []

    def new_repo(owner: str, name: str, description: str, created: str, **kw: object) -> Repo:
        repo = Repo(ids.next("repo"), owner, name, description, _t(created), **kw)  # type: ignore[arg-type]
        repos.append(repo)
        return repo

    # -- northwind/lighthouse ------------------------------------------------------------
    lh = new_repo(
        "northwind",
        "lighthouse",
        "Self-hosted uptime monitoring: HTTP and DNS probes, alert routing, dashboards.",
        "2025-09-02T09:00:00Z",
        topics=["monitoring", "uptime", "python"],
        language="Python",
        website="https://lighthouse.northwind.example",
        stars=42,
        forks=3,
        watchers=6,
    )
    g = lh.git
    g.commit(
        "main",
        "Initial commit",
        alice,
        _t("2025-09-02T09:14:00Z"),
        {
            "README.md": _b(README),
            "LICENSE": _b(LICENSE),
            ".gitignore": b"__pycache__/\n*.egg-info/\n.venv/\n.env.local\n",
            "pyproject.toml": _b(PYPROJECT.format(version="0.1.0")),
            "src/lighthouse/__init__.py": b'__version__ = "0.1.0"\n',
        },
        parent=None,
    )
    g.commit(
        "main",
        "Add HTTP and DNS probes",
        alice,
        _t("2025-09-05T16:02:00Z"),
        {
            "src/lighthouse/checks/__init__.py": b'"""Probes."""\n',
            "src/lighthouse/checks/http/__init__.py": b"from .probe import probe\n",
            "src/lighthouse/checks/http/probe.py": _b(PROBE_V1),
            "src/lighthouse/checks/dns/__init__.py": b"from .resolver import check\n",
            "src/lighthouse/checks/dns/resolver.py": _b(RESOLVER_V1),
            "tests/test_http_probe.py": b"from lighthouse.checks.http import probe\n\n\ndef test_probe_is_callable():\n    assert callable(probe)\n",
        },
    )
    g.commit(
        "main",
        "Add alert routing with Slack and e-mail notifiers",
        bob,
        _t("2025-09-12T11:40:00Z"),
        {
            "src/lighthouse/alerts/__init__.py": b"from .router import Rule, route\n",
            "src/lighthouse/alerts/router.py": _b(ROUTER),
            "src/lighthouse/alerts/notifiers/slack.py": _b(SLACK),
            "src/lighthouse/alerts/notifiers/email.py": _b(EMAIL),
            "docs/alerting.md": _b(ALERTING_V1),
        },
    )
    c4 = g.commit(
        "main",
        "Add logo and documentation index",
        alice,
        _t("2025-09-20T10:05:00Z"),
        {
            "docs/images/logo.png": _png(),
            "docs/index.md": b"# Lighthouse documentation\n\n![logo](images/logo.png)\n\n- [Alerting](alerting.md)\n",
            "pyproject.toml": _b(PYPROJECT.format(version="1.0.0")),
            "src/lighthouse/__init__.py": b'__version__ = "1.0.0"\n',
        },
    )
    g.commit(
        "main",
        "Add docker compose deployment",
        bob,
        _t("2025-10-01T15:30:00Z"),
        {
            ".env": _b(DOTENV),
            "deploy/docker-compose.yml": _b(COMPOSE),
            "deploy/id_rsa": _b(_fake_pem("OPENSSH PRIVATE KEY", "deploy key")),
            "deploy/id_rsa.pub": b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE deploy@northwind\n",
            "certs/server.pem": _b(
                _fake_pem("CERTIFICATE", "server certificate")
                + _fake_pem("PRIVATE KEY", "server key")
            ),
        },
    )
    g.commit(
        "main",
        "Add a week of sample metrics for dashboard demos",
        carol,
        _t("2025-10-03T08:12:00Z"),
        {
            "data/sample-metrics.csv": _metrics_csv(),
        },
    )
    g.commit(
        "main",
        "Add role checks for the admin API",
        bob,
        _t("2025-10-15T17:45:00Z"),
        {
            "src/lighthouse/auth/__init__.py": b"from .roles import can_edit, is_admin\n",
            "src/lighthouse/auth/roles.py": _b(ROLES),
        },
    )
    c8 = g.commit(
        "main",
        "Add nightly S3 backup script",
        alice,
        _t("2025-10-20T21:10:00Z"),
        {
            "tools/backup/backup_to_s3.sh": _b(BACKUP_SH),
            "pyproject.toml": _b(PYPROJECT.format(version="1.1.0")),
            "src/lighthouse/__init__.py": b'__version__ = "1.1.0"\n',
        },
    )
    base_for_fix = c8.sha
    c9 = g.commit(
        "fix/dns-flake",
        "Fix flaky DNS resolver test\n\nThe test hit the real network; it now injects a stub resolver.",
        bob,
        _t("2025-11-02T12:00:00Z"),
        {
            "src/lighthouse/checks/dns/resolver.py": _b(RESOLVER_V2),
            "tests/test_dns.py": b"from lighthouse.checks.dns import check\n\n\nclass Stub:\n    def resolve(self, name, kind, lifetime):\n        return []\n\n\ndef test_empty_answers():\n    assert check('x.example', set(), resolver=Stub())['ok']\n",
        },
        parent=c8.sha,
    )
    g.branches["main"] = c9.sha  # fast-forward merge of PR #12
    c10 = g.commit(
        "main",
        "Release 1.2.0",
        alice,
        _t("2025-11-10T09:00:00Z"),
        {
            "CHANGELOG.md": _b(CHANGELOG),
            "pyproject.toml": _b(PYPROJECT.format(version="1.2.0")),
            "src/lighthouse/__init__.py": b'__version__ = "1.2.0"\n',
        },
    )
    g.commit(
        "main",
        "Document alert routing rules",
        alice,
        _t("2025-12-01T14:25:00Z"),
        {"docs/alerting.md": _b(ALERTING_V2)},
    )
    c12 = g.commit(
        "main",
        "Retry HTTP probes once before alerting",
        bob,
        _t("2026-01-08T10:50:00Z"),
        {
            "src/lighthouse/checks/http/probe.py": _b(PROBE_V2),
        },
    )
    g.commit(
        "develop",
        "WIP: dashboard skeleton",
        alice,
        _t("2026-01-20T18:00:00Z"),
        {
            "src/lighthouse/dashboard/__init__.py": b'"""Dashboard (work in progress)."""\n',
            "src/lighthouse/dashboard/templates/index.html": b"<!doctype html>\n<title>Lighthouse</title>\n<h1>Lighthouse</h1>\n",
        },
        parent=c12.sha,
    )
    g.commit(
        "feature/http2-probes",
        "Probe with HTTP/2 when the server offers it",
        bob,
        _t("2025-11-20T13:00:00Z"),
        {
            "src/lighthouse/checks/http/probe.py": _b(PROBE_HTTP2),
        },
        parent=c10.sha,
    )
    h2 = g.commit(
        "feature/http2-probes",
        "Add h2 extra to dependencies",
        bob,
        _t("2025-11-21T09:30:00Z"),
        {
            "pyproject.toml": _b(
                PYPROJECT.format(version="1.2.0").replace('"httpx>=0.27"', '"httpx[http2]>=0.27"')
            ),
        },
    )
    docs_pr = g.commit(
        "docs/alert-routing",
        "Explain alert routing rules with examples",
        carol,
        _t("2025-11-25T16:00:00Z"),
        {
            "docs/alerting.md": _b(
                ALERTING_V1
                + "\n## Examples\n\nRoute production failures to Slack, staging to e-mail.\n"
            ),
        },
        parent=c10.sha,
    )
    bump = g.commit(
        "chore/bump-deps",
        "Bump httpx to 0.28 and dnspython to 2.7",
        bob,
        _t("2026-01-25T11:00:00Z"),
        {
            "pyproject.toml": _b(
                PYPROJECT.format(version="1.2.0")
                .replace("httpx>=0.27", "httpx>=0.28")
                .replace("dnspython>=2.6", "dnspython>=2.7")
            ),
        },
        parent=c12.sha,
    )
    g.branches = {
        k: g.branches[k]
        for k in [
            "main",
            "develop",
            "chore/bump-deps",
            "docs/alert-routing",
            "feature/http2-probes",
            "fix/dns-flake",
        ]
    }
    g.tag("v1.0.0", c4.sha, "Lighthouse 1.0.0", alice)
    g.tag("v1.1.0", c8.sha, "Lighthouse 1.1.0", alice)
    g.tag("v1.2.0", c10.sha, "Lighthouse 1.2.0", alice)
    g.tag("v1.3.0-rc1", c12.sha)  # lightweight tag

    labels = {
        name: Label(ids.next("label"), name, color, desc)
        for name, color, desc in [
            ("bug", "ee0701", "Something is not working"),
            ("enhancement", "84b6eb", "New feature or improvement"),
            ("documentation", "0075ca", "Docs only"),
            ("security", "b60205", "Security-relevant"),
            ("good first issue", "7057ff", "Good for newcomers"),
            ("question", "d876e3", "Further information is requested"),
        ]
    }
    lh.labels = list(labels.values())
    ms_12 = Milestone(
        ids.next("milestone"),
        "v1.2.0",
        "DNS fixes and backups",
        "closed",
        _t("2025-10-21T09:00:00Z"),
        _t("2025-11-10T00:00:00Z"),
        _t("2025-11-10T09:05:00Z"),
    )
    ms_13 = Milestone(
        ids.next("milestone"),
        "v1.3.0",
        "HTTP/2, retries and the dashboard",
        "open",
        _t("2025-11-10T09:10:00Z"),
        _t("2026-03-31T00:00:00Z"),
    )
    lh.milestones = [ms_12, ms_13]

    def comment(user: str, body: str, when: str) -> Comment:
        return Comment(ids.next("comment"), user, body, _t(when))

    handcrafted: dict[int, Issue] = {}

    def add(number: int, title: str, body: str, user: str, created: str, **kw: object) -> Issue:
        issue = Issue(ids.next("issue"), number, title, body, user, _t(created), **kw)  # type: ignore[arg-type]
        handcrafted[number] = issue
        return issue

    add(
        1,
        "HTTP probe does not follow redirects to HTTPS",
        "Probing `http://status.northwind.example` reports 301 as down.\n\nExpected: follow the redirect and report the final status.",
        "carol",
        "2025-09-06T08:00:00Z",
        state="closed",
        closed_at=_t("2025-09-08T10:00:00Z"),
        labels=[labels["bug"]],
        comments=[
            comment(
                "alice", "Good catch, `follow_redirects=True` is missing.", "2025-09-06T09:10:00Z"
            ),
            comment("carol", "Confirmed fixed on main, thanks!", "2025-09-08T10:00:00Z"),
        ],
    )
    add(
        2,
        "Document how to run Lighthouse behind a reverse proxy",
        "A short section for nginx and Caddy would help new users.",
        "bob",
        "2025-09-10T12:00:00Z",
        labels=[labels["documentation"], labels["good first issue"]],
        milestone=ms_13,
    )
    add(
        3,
        "Role check lets editors into the admin API?",
        "While reviewing `src/lighthouse/auth/roles.py` my editor showed the admin comparison differently from what the code does. "
        'Pasting the line as I see it: `if access_level != "viewer\u202e \u2066# check if admin\u2069 \u2066":` \u2014 copy\u200bpaste shows extra characters.\n\nCan someone check for bidi control characters?',
        "carol",
        "2025-10-16T09:30:00Z",
        labels=[labels["security"], labels["bug"]],
        assignees=["bob"],
        milestone=ms_13,
        comments=[
            comment("bob", "Ouch. My editor hides these. Looking now.", "2025-10-16T10:02:00Z"),
            comment(
                "alice",
                "Let's add a pre-commit hook that rejects U+202A..U+202E and U+2066..U+2069.",
                "2025-10-16T11:45:00Z",
            ),
        ],
    )
    add(
        4,
        "Secrets committed in tools/backup/backup_to_s3.sh",
        "The backup script has an AWS key and a private key inline. Even if they are test values we should rotate and move them to the secrets manager.",
        "carol",
        "2025-10-21T07:50:00Z",
        labels=[labels["security"]],
        assignees=["alice"],
        milestone=ms_13,
        locked=True,
        comments=[
            comment(
                "alice",
                "Agreed. Rotating today; the script will read from the environment instead.",
                "2025-10-21T08:30:00Z",
            )
        ],
    )
    add(
        7,
        "Slack notifier should include the probe region",
        "Alerts say *down* but not from where, which makes triage slow.",
        "bob",
        "2025-09-15T10:00:00Z",
        labels=[labels["enhancement"]],
        milestone=ms_13,
        comments=[comment("carol", "+1, region and latency please.", "2025-09-15T12:00:00Z")],
    )
    add(
        9,
        "Sample metrics CSV is too big for the docs site",
        "`data/sample-metrics.csv` is over 100 KB; the docs build inlines it. Can we link it instead?",
        "alice",
        "2025-10-04T09:00:00Z",
        labels=[labels["documentation"]],
        state="closed",
        closed_at=_t("2025-10-05T09:00:00Z"),
    )
    add(
        21,
        "Alert rules: support 'stop after first match'",
        "Right now every matching rule fires. Many setups want first-match-wins.",
        "bob",
        "2025-11-28T15:00:00Z",
        labels=[labels["enhancement"]],
        milestone=ms_13,
        comments=[
            comment(
                "alice",
                "Let's add `continue = false` per rule, like Alertmanager.",
                "2025-11-29T09:00:00Z",
            )
        ],
    )
    add(
        30,
        "How do I configure probe intervals per check?",
        "The docs mention a global interval only.",
        "carol",
        "2025-12-03T11:00:00Z",
        labels=[labels["question"]],
        comments=[
            comment(
                "alice",
                "Per-check `interval` works since 1.2; docs coming.",
                "2025-12-03T12:00:00Z",
            )
        ],
    )

    def add_pull(
        number: int, title: str, body: str, user: str, created: str, info: PullInfo, **kw: object
    ) -> Issue:
        info.pr_id = ids.next("pull")
        return add(number, title, body, user, created, pull=info, **kw)

    add_pull(
        12,
        "Fix flaky DNS resolver test",
        "The DNS test hit the real network. This injects a stub resolver.\n\nFixes #11.",
        "bob",
        "2025-11-01T17:00:00Z",
        PullInfo(
            "fix/dns-flake",
            "main",
            c9.sha,
            base_for_fix,
            merged=True,
            merged_at=_t("2025-11-02T12:30:00Z"),
            merged_by="alice",
            merge_commit_sha=c9.sha,
            review_comments=1,
        ),
        state="closed",
        closed_at=_t("2025-11-02T12:30:00Z"),
        labels=[labels["bug"]],
        milestone=ms_12,
        assignees=["bob"],
        comments=[comment("alice", "LGTM, merging.", "2025-11-02T12:25:00Z")],
    )
    add_pull(
        47,
        "Add HTTP/2 support to the HTTP probe",
        "Uses `httpx[http2]`; the result now includes `http_version`.\n\nCloses #46.",
        "bob",
        "2025-11-21T10:00:00Z",
        PullInfo(
            "feature/http2-probes", "main", h2.sha, c10.sha, mergeable=False, review_comments=3
        ),
        labels=[labels["enhancement"]],
        milestone=ms_13,
        assignees=["bob", "alice"],
        comments=[
            comment(
                "alice",
                "Needs a rebase on the retry change (#12 era code moved).",
                "2025-12-02T09:00:00Z",
            ),
            comment("bob", "Will rebase after the holidays.", "2025-12-20T17:00:00Z"),
        ],
    )
    add_pull(
        58,
        "Docs: explain alert routing rules",
        "Adds examples to docs/alerting.md.",
        "carol",
        "2025-11-25T16:30:00Z",
        PullInfo("docs/alert-routing", "main", docs_pr.sha, c10.sha, mergeable=False),
        state="closed",
        closed_at=_t("2025-12-01T14:30:00Z"),
        labels=[labels["documentation"]],
        comments=[
            comment(
                "alice",
                "Superseded by a direct commit on main with more detail, thanks Carol!",
                "2025-12-01T14:30:00Z",
            )
        ],
    )
    add_pull(
        66,
        "WIP: bump dependencies",
        "Draft until the dnspython 2.7 changelog is checked.",
        "bob",
        "2026-01-25T11:10:00Z",
        PullInfo("chore/bump-deps", "main", bump.sha, c12.sha, draft=True),
    )

    rng = random.Random(68)
    people = ["alice", "bob", "carol"]
    when = _t("2025-09-07T08:00:00Z")
    for number in range(1, 69):
        when += timedelta(hours=rng.randint(20, 40))
        if number in handcrafted:
            continue
        area = _AREAS[number % len(_AREAS)]
        problem, label = _PROBLEMS[(number * 7) % len(_PROBLEMS)]
        state = "closed" if rng.random() < 0.35 else "open"
        issue = Issue(
            ids.next("issue"),
            number,
            f"{area} {problem}",
            f"Seen on Lighthouse 1.{number % 3}.x.\n\nSteps: configure a check, wait for the next run, look at the result.\n\n_Reported from the support queue (ticket NW-{1000 + number})._",
            people[number % 3],
            when,
            state=state,
            labels=[labels[label]],
            closed_at=when + timedelta(days=rng.randint(1, 9)) if state == "closed" else None,
            milestone=ms_13 if number % 4 == 0 else None,
            assignees=[people[(number + 1) % 3]] if number % 5 == 0 else [],
        )
        if number % 6 == 0:
            issue.comments.append(
                comment(
                    people[(number + 2) % 3],
                    "I can reproduce this on main.",
                    (when + timedelta(hours=3)).isoformat(),
                )
            )
        handcrafted[number] = issue
    # keep Gitea's id order: ids grow with creation time, and index numbers too
    lh.issues = sorted(handcrafted.values(), key=lambda i: i.number)
    for new_id, issue in enumerate(sorted(lh.issues, key=lambda i: i.created), start=1):
        issue.id = new_id

    lh.releases = [
        Release(
            ids.next("release"),
            "v1.0.0",
            "Lighthouse 1.0.0",
            "First stable release: HTTP and DNS probes, Slack and e-mail alerts.",
            "alice",
            _t("2025-09-20T10:30:00Z"),
        ),
        Release(
            ids.next("release"),
            "v1.1.0",
            "Lighthouse 1.1.0",
            "Docker compose deployment, sample metrics, nightly backups.",
            "alice",
            _t("2025-10-20T21:30:00Z"),
        ),
        Release(
            ids.next("release"),
            "v1.2.0",
            "Lighthouse 1.2.0",
            "See CHANGELOG.md. Highlights: pluggable DNS resolver, role checks.",
            "alice",
            _t("2025-11-10T09:15:00Z"),
        ),
        Release(
            ids.next("release"),
            "v1.3.0-rc1",
            "Lighthouse 1.3.0 RC 1",
            "Release candidate: HTTP probes retry once before alerting.",
            "bob",
            _t("2026-01-09T08:00:00Z"),
            prerelease=True,
        ),
        Release(
            ids.next("release"),
            "v1.3.0",
            "Lighthouse 1.3.0 (draft)",
            "Draft notes, not published yet.",
            "alice",
            _t("2026-01-28T08:00:00Z"),
            draft=True,
        ),
    ]

    # -- northwind/deploy-config (private, readers team) ------------------------------------
    dc = new_repo(
        "northwind",
        "deploy-config",
        "Ansible and Terraform for the Lighthouse production stack.",
        "2025-09-25T10:00:00Z",
        private=True,
        language="HCL",
        topics=["ansible", "terraform"],
    )
    dc.git.commit(
        "main",
        "Production inventory and base role",
        carol,
        _t("2025-09-25T10:20:00Z"),
        {
            "README.md": b"# deploy-config\n\nProduction deployment of Lighthouse. Run `make plan` before `make apply`.\n",
            "ansible/inventory/production.ini": b"[lighthouse]\nlh-eu-1.northwind.internal\nlh-us-1.northwind.internal\n\n[db]\ndb-1.northwind.internal\n",
            "ansible/roles/lighthouse/tasks/main.yml": b"- name: Install Lighthouse\n  pip:\n    name: lighthouse==1.2.0\n- name: Start service\n  systemd:\n    name: lighthouse\n    state: started\n",
            "terraform/main.tf": b'terraform {\n  required_version = ">= 1.6"\n}\n\nmodule "lighthouse" {\n  source = "./modules/lighthouse"\n  region = "eu-west-1"\n}\n',
        },
        parent=None,
    )
    dc.git.commit(
        "main",
        "Add production environment file (demo values)",
        carol,
        _t("2025-10-02T09:00:00Z"),
        {
            ".env.production": b"DATABASE_URL=postgres://lighthouse:demo-only-password@db-1.northwind.internal/lighthouse\nSENTRY_DSN=https://public@sentry.northwind.example/3\n",
        },
    )
    dc.issues = [
        Issue(
            1,
            1,
            "Move .env.production into Vault",
            "Plain files in git are not OK for production values.",
            "carol",
            _t("2025-10-02T09:30:00Z"),
            labels=[],
        ),
        Issue(
            2,
            2,
            "Upgrade Terraform provider to 5.x",
            "",
            "bob",
            _t("2025-11-05T10:00:00Z"),
            state="closed",
            closed_at=_t("2025-11-06T10:00:00Z"),
        ),
    ]
    for issue in dc.issues:
        issue.id = ids.next("issue")

    # -- small and special repositories -------------------------------------------------------
    new_repo(
        "northwind",
        "empty-sandbox",
        "Scratch space for experiments (nothing pushed yet).",
        "2026-01-15T12:00:00Z",
    )
    legacy = new_repo(
        "northwind",
        "legacy-monitor",
        "The shell-script monitor Lighthouse replaced. Archived.",
        "2025-06-03T09:00:00Z",
        archived=True,
        archived_at=_t("2025-09-21T09:00:00Z"),
        language="Shell",
    )
    legacy.git.commit(
        "main",
        "Import legacy monitor scripts",
        carol,
        _t("2025-06-03T09:30:00Z"),
        {
            "README.md": b"# legacy-monitor\n\nArchived. Use Lighthouse instead.\n",
            "check.sh": b'#!/bin/sh\ncurl -fsS "$1" >/dev/null || echo "DOWN: $1"\n',
        },
        parent=None,
    )
    hr = new_repo(
        "northwind",
        "hr-payroll",
        "Payroll exports (finance team only).",
        "2025-07-01T09:00:00Z",
        private=True,
    )
    hr.git.commit(
        "main",
        "Payroll export scripts",
        carol,
        _t("2025-07-01T09:30:00Z"),
        {
            "README.md": b"# hr-payroll\n\nFinance team only.\n",
            "export.py": b"print('payroll')\n",
        },
        parent=None,
    )
    dotfiles = new_repo(
        "alice",
        "dotfiles",
        "My shell and editor configuration.",
        "2025-06-05T19:00:00Z",
        language="Shell",
        stars=4,
    )
    dotfiles.git.commit(
        "main",
        "Add bash and vim config",
        alice,
        _t("2025-06-05T19:10:00Z"),
        {
            "README.md": b"# dotfiles\n\n`./install.sh` symlinks everything into `$HOME`.\n",
            ".bashrc": b"export EDITOR=vim\nalias ll='ls -alF'\n",
            ".vimrc": b"set number\nset expandtab shiftwidth=4\n",
            "install.sh": b'#!/bin/sh\nfor f in .bashrc .vimrc; do ln -sf "$PWD/$f" "$HOME/$f"; done\n',
        },
        parent=None,
    )
    notes = new_repo(
        "alice",
        "notes",
        "Meeting notes and planning (shared with the bot for summaries).",
        "2025-10-01T08:00:00Z",
        private=True,
        collaborators={"aegis-bot": "read", "bob": "write"},
    )
    notes.git.commit(
        "main",
        "Planning notes for 1.3",
        alice,
        _t("2026-01-12T08:30:00Z"),
        {
            "README.md": b"# notes\n\nPrivate notes. The Aegis bot may read them to summarise plans.\n",
            "meetings/2026-01-12.md": b"# Planning 2026-01-12\n\n- 1.3 scope: HTTP/2, retries, dashboard skeleton.\n- Rotate the backup keys (issue #4).\n",
        },
        parent=None,
    )
    ir = new_repo(
        "carol",
        "incident-response",
        "Runbooks and post-mortems (private).",
        "2025-07-10T09:00:00Z",
        private=True,
    )
    ir.git.commit(
        "main",
        "Database failover runbook",
        carol,
        _t("2025-07-10T09:30:00Z"),
        {
            "README.md": b"# incident-response\n\nRunbooks. Not for bots.\n",
            "runbooks/db-failover.md": b"# DB failover\n\n1. Promote the replica.\n",
        },
        parent=None,
    )
    ir.issues = [
        Issue(
            ids.next("issue"),
            1,
            "Post-mortem: October outage",
            "Timeline and follow-ups.",
            "carol",
            _t("2025-10-28T10:00:00Z"),
        )
    ]

    # -- 50 plugins, so repository lists need two pages at limit=50 --------------------------
    start = _t("2025-09-10T09:00:00Z")
    for n, plugin in enumerate(PLUGIN_NAMES):
        created = start + timedelta(days=2 * n, hours=n % 7)
        kind = "notifier" if n < 12 else "exporter" if n < 25 else "check"
        repo = new_repo(
            "northwind",
            f"lighthouse-plugin-{plugin}",
            f"Lighthouse {kind} plugin for {plugin.replace('-', ' ').title()}.",
            created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            language="Python",
            topics=["lighthouse-plugin", kind],
            stars=n % 9,
        )
        module = plugin.replace("-", "_")
        repo.git.commit(
            "main",
            f"Scaffold the {plugin} plugin",
            (alice, bob, carol)[n % 3],
            created + timedelta(minutes=20),
            {
                "README.md": _b(
                    f"# lighthouse-plugin-{plugin}\n\nA Lighthouse {kind} plugin for {plugin}.\n\n```sh\npip install lighthouse-plugin-{plugin}\n```\n"
                ),
                f"lighthouse_plugin_{module}/__init__.py": _b(
                    f'"""Lighthouse {kind} plugin: {plugin}."""\n\nKIND = "{kind}"\n\n\ndef setup(registry):\n    registry.add_{kind}("{plugin}", __name__)\n'
                ),
            },
            parent=None,
        )

    add_operations(lh, _t("2026-01-26T09:00:00Z"), dict(lh.git.branches))

    tokens: dict[str, tuple[str, frozenset[str]]] = {token: (BOT_LOGIN, ALL_READ_SCOPES)}
    for extra, (login, scopes) in (extra_tokens or {}).items():
        tokens[extra] = (login, frozenset(scopes))
    return Dataset(
        users=users,
        repos=repos,
        teams={
            "northwind": [
                Team(
                    "Owners", {"alice"}, {r.name for r in repos if r.owner == "northwind"}, "owner"
                ),
                Team("readers", {BOT_LOGIN, "bob"}, {"deploy-config"}, "read"),
                Team("finance", {"carol"}, {"hr-payroll"}, "write"),
            ]
        },
        org_owners={"northwind": {"alice"}},
        tokens=tokens,
    )
