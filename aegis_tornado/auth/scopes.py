"""Per-key scopes: what one API key may reach, on top of the global policy.

A key entry in the YAML file may carry any of::

    - key: ...
      name: ci-bot
      repos: {allow: [acme/*], deny: [acme/secrets]}   # or a plain list: the allow list
      tools: [get_file_contents, list_commits]
      sensitive_paths: ["*.sql"]                        # added to the global list
      expires: 2027-01-31                               # refused from that day on (UTC)
      allowed_ips: [10.0.0.0/8, 2001:db8::/32]

A scope only ever narrows: the global ``REPO_ALLOWLIST``/``REPO_DENYLIST`` and
``SENSITIVE_PATHS`` are checked first and still apply in full.

``expires`` and ``allowed_ips`` are checked at the gate (:func:`gate_refusal`). The rest is
enforced where the global policy is, by wrapping it: the request's scope is held in a
context variable for the duration of the request (and of the tool calls it starts), and
:class:`ScopedRepoPolicy`, :class:`ScopedPathPolicy` and :class:`ScopedToolRegistry` consult it.
So a repository outside a key's scope takes exactly the path of a denied one (same message,
no Gitea request), and a tool outside it is exactly an unknown tool.
"""

from __future__ import annotations

import contextvars
import dataclasses
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, TypeVar

from ..mcp import versions
from ..mcp.registry import Tool, ToolRegistry
from ..settings import SCOPE_FIELDS, ip_networks
from ..tools.policy import PathPolicy, RepoPolicy
from .keys import ConfiguredKey

T = TypeVar("T")

_TOOL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class KeyScope:
    """The narrowing one key carries. ``None`` for a field means "no narrowing"."""

    repos: RepoPolicy | None = None
    tools: frozenset[str] | None = None
    sensitive_paths: PathPolicy | None = None
    expires: datetime | None = None  # aware, UTC
    allowed_ips: tuple[Network, ...] | None = None

    def expired(self, now: datetime | None = None) -> bool:
        if self.expires is None:
            return False
        return (now or datetime.now(timezone.utc)) >= self.expires

    def allows_ip(self, ip: str) -> bool:
        if self.allowed_ips is None:
            return True
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False  # fail closed: an address we cannot read is outside every range
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.allowed_ips)

    def allows_tool(self, name: str) -> bool:
        return self.tools is None or name in self.tools


# --- parsing ---------------------------------------------------------------------------------


def _string_list(raw: Any, what: str) -> list[str]:
    if isinstance(raw, str) or not isinstance(raw, list):
        raise ValueError(f"{what} must be a list")
    if not all(isinstance(item, str) and item.strip() for item in raw):
        raise ValueError(f"{what} must be a list of non-empty strings")
    return [item.strip() for item in raw]


def _parse_repos(raw: Any) -> RepoPolicy:
    if isinstance(raw, list):
        allow, deny = _string_list(raw, "repos"), []
    elif isinstance(raw, dict):
        unknown = set(raw) - {"allow", "deny"}
        if unknown:
            raise ValueError("repos may only have 'allow' and 'deny'")
        allow = _string_list(raw.get("allow") or [], "repos.allow")
        deny = _string_list(raw.get("deny") or [], "repos.deny")
    else:
        raise ValueError("repos must be a list of allowed patterns or {allow: [...], deny: [...]}")
    if not allow and not deny:
        raise ValueError("repos is empty; leave it out to give the key every allowed repository")
    return RepoPolicy(allow=allow, deny=deny)


def _parse_tools(raw: Any) -> frozenset[str]:
    names = _string_list(raw, "tools")
    for name in names:
        if not _TOOL_NAME.fullmatch(name):
            raise ValueError(f"tools: {name[:60]!r} is not a tool name")
    if not names:
        raise ValueError("tools is empty; leave it out to give the key every tool")
    return frozenset(names)


def _parse_expires(raw: Any) -> datetime:
    if isinstance(raw, datetime):
        moment = raw
    elif isinstance(raw, date):
        moment = datetime(raw.year, raw.month, raw.day)
    elif isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw.strip())
        except ValueError:
            raise ValueError("expires must be a date like 2027-01-31") from None
    else:
        raise ValueError("expires must be a date like 2027-01-31")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _parse_networks(raw: Any) -> tuple[Network, ...]:
    items = _string_list(raw, "allowed_ips")
    try:
        networks = ip_networks(items)
    except ValueError as error:
        raise ValueError(f"allowed_ips: {error}") from None
    if not networks:
        raise ValueError("allowed_ips is empty; leave it out to allow every address")
    return tuple(networks)


def parse_scope(entry: Mapping[str, Any]) -> KeyScope | None:
    """The scope fields of one YAML key entry, or None when it has none.

    Raises ValueError with a message naming the field (never a key)."""
    if not SCOPE_FIELDS & set(entry):
        return None
    return KeyScope(
        repos=_parse_repos(entry["repos"]) if "repos" in entry else None,
        tools=_parse_tools(entry["tools"]) if "tools" in entry else None,
        sensitive_paths=(
            PathPolicy(_string_list(entry["sensitive_paths"], "sensitive_paths"))
            if "sensitive_paths" in entry
            else None
        ),
        expires=_parse_expires(entry["expires"]) if "expires" in entry else None,
        allowed_ips=_parse_networks(entry["allowed_ips"]) if "allowed_ips" in entry else None,
    )


def with_scopes(keys: Iterable[ConfiguredKey]) -> tuple[ConfiguredKey, ...]:
    """The configured keys, each with the scope its ``scope_fields`` describe built.

    Raises ValueError naming the key by its place in the list (``key #2 ...``), never the key."""
    built = []
    for number, key in enumerate(keys, start=1):
        if key.scope_fields is not None:
            try:
                key = dataclasses.replace(key, scope=parse_scope(key.scope_fields))
            except ValueError as error:
                raise ValueError(f"key #{number} {error}") from None
        built.append(key)
    return tuple(built)


def unknown_tools(keys: Iterable[Any], tool_names: Iterable[str]) -> dict[str, list[str]]:
    """Key label → the names in its ``tools`` scope that no registered tool has (a typo the
    operator should hear about: the key simply lacks that tool)."""
    known = set(tool_names)
    found = {}
    for key in keys:
        scope = getattr(key, "scope", None)
        if scope is not None and scope.tools is not None and not scope.tools <= known:
            found[key.label] = sorted(scope.tools - known)
    return found


# --- the gate ---------------------------------------------------------------------------------


def gate_refusal(scope: KeyScope | None, client_ip: str) -> str | None:
    """The audit reason a matched key is refused for (``expired_api_key``,
    ``ip_not_allowed``), or None when the scope lets this request through."""
    if scope is None:
        return None
    if scope.expired():
        return "expired_api_key"
    if not scope.allows_ip(client_ip):
        return "ip_not_allowed"
    return None


# --- the request's scope ----------------------------------------------------------------------

_current: contextvars.ContextVar[KeyScope | None] = contextvars.ContextVar(
    "aegis_key_scope", default=None
)


def enter(scope: KeyScope | None) -> None:
    """Make ``scope`` the one in force for the current request (and the tasks it starts:
    asyncio copies the context into each task it creates)."""
    _current.set(scope)


def current() -> KeyScope | None:
    return _current.get()


class ScopedRepoPolicy(RepoPolicy):
    """The global repository policy, narrowed by the current request's key scope.

    Every question the tools ask of a :class:`RepoPolicy` gets the answer of "global AND scope",
    so no tool can reach a repository outside the key's scope by a route the global policy
    guards."""

    def __init__(self, base: RepoPolicy) -> None:
        super().__init__(allow=base.allow, deny=base.deny)

    @staticmethod
    def _scope_repos() -> RepoPolicy | None:
        scope = _current.get()
        return scope.repos if scope is not None else None

    @property
    def unrestricted(self) -> bool:
        return super().unrestricted and self._scope_repos() is None

    def denial_reason(self, owner: object, repo: object) -> str | None:
        reason = super().denial_reason(owner, repo)
        scoped = self._scope_repos()
        if reason is None and scoped is not None:
            narrower = scoped.denial_reason(owner, repo)
            if narrower is not None:
                return f"outside the key's scope ({narrower})"
        return reason

    def allows_owner_fully(self, owner: object) -> bool:
        scoped = self._scope_repos()
        return super().allows_owner_fully(owner) and (
            scoped is None or scoped.allows_owner_fully(owner)
        )

    def may_allow_owner(self, owner: object) -> bool:
        scoped = self._scope_repos()
        return super().may_allow_owner(owner) and (scoped is None or scoped.may_allow_owner(owner))


class ScopedPathPolicy(PathPolicy):
    """The global sensitive paths, plus those of the current request's key scope."""

    def __init__(self, base: PathPolicy) -> None:
        super().__init__(base.globs)

    def blocked_reason(self, path: str) -> str | None:
        reason = super().blocked_reason(path)
        scope = _current.get()
        if reason is None and scope is not None and scope.sensitive_paths is not None:
            return scope.sensitive_paths.blocked_reason(path)
        return reason


class ScopedToolRegistry(ToolRegistry):
    """The registry as the current request's key sees it: a tool outside the key's ``tools``
    is absent from ``tools/list`` and unknown to ``tools/call``."""

    def __init__(self, base: ToolRegistry) -> None:
        super().__init__()
        self._tools = {tool.name: tool for tool in base}

    @staticmethod
    def _visible() -> Callable[[str], bool]:
        scope = _current.get()
        return scope.allows_tool if scope is not None else (lambda name: True)

    def get(self, name: str) -> Tool | None:
        tool = self._tools.get(name)
        return tool if tool is not None and self._visible()(name) else None

    def __iter__(self) -> Iterator[Tool]:
        visible = self._visible()
        return iter([tool for tool in self._tools.values() if visible(tool.name)])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def descriptors(self, version: str = versions.LATEST) -> list[dict[str, Any]]:
        return [tool.descriptor(version) for tool in self]

    def all_tools(self) -> tuple[Tool, ...]:
        """Every registered tool, whatever the current scope (start-up checks, reloads)."""
        return tuple(self._tools.values())


# --- OAuth callers: scopes per Gitea user and per OAuth client --------------------------------


class RepoPolicyIntersection(RepoPolicy):
    """Several repository policies at once: a repository is allowed only when each allows it.

    Allow lists of globs do not combine into one list, so each question is asked of every
    policy (a user's scope and a client's scope, both narrowing)."""

    def __init__(self, policies: Iterable[RepoPolicy]) -> None:
        super().__init__()
        self.policies = tuple(policies)

    def __repr__(self) -> str:
        return f"RepoPolicyIntersection({list(self.policies)!r})"

    @property
    def unrestricted(self) -> bool:
        return all(policy.unrestricted for policy in self.policies)

    def denial_reason(self, owner: object, repo: object) -> str | None:
        for policy in self.policies:
            reason = policy.denial_reason(owner, repo)
            if reason is not None:
                return reason
        return None

    def allows_owner_fully(self, owner: object) -> bool:
        return all(policy.allows_owner_fully(owner) for policy in self.policies)

    def may_allow_owner(self, owner: object) -> bool:
        return all(policy.may_allow_owner(owner) for policy in self.policies)


def _both(first: T | None, second: T | None, combine: Callable[[T, T], T]) -> T | None:
    if first is None:
        return second
    if second is None:
        return first
    return combine(first, second)


def _common_networks(
    first: tuple[Network, ...], second: tuple[Network, ...]
) -> tuple[Network, ...]:
    """The addresses in both lists. Two CIDR blocks are nested or disjoint, so the overlap of
    each pair is the smaller block, or nothing. An empty result lets no address through."""
    common: list[Network] = []
    for a in first:
        for b in second:
            if a.version != b.version:
                continue
            if a.subnet_of(b):  # type: ignore[arg-type]
                common.append(a)
            elif b.subnet_of(a):  # type: ignore[arg-type]
                common.append(b)
    return tuple(dict.fromkeys(common))


def intersect(first: KeyScope | None, second: KeyScope | None) -> KeyScope | None:
    """One scope that narrows as both do: repositories both allow, tools in both, the
    sensitive paths of both, the earlier expiry, addresses in both ranges."""
    if first is None or second is None:
        return first if second is None else second
    return KeyScope(
        repos=_both(first.repos, second.repos, lambda a, b: RepoPolicyIntersection((a, b))),
        tools=_both(first.tools, second.tools, lambda a, b: a & b),
        sensitive_paths=_both(
            first.sensitive_paths,
            second.sensitive_paths,
            lambda a, b: PathPolicy(list(dict.fromkeys(a.globs + b.globs))),
        ),
        expires=_both(first.expires, second.expires, min),
        allowed_ips=_both(first.allowed_ips, second.allowed_ips, _common_networks),
    )


@dataclass(frozen=True)
class LabelledScope:
    label: str
    scope: KeyScope


@dataclass(frozen=True)
class OAuthScopes:
    """Scopes for OAuth callers, by Gitea login (case-insensitive, as Gitea's) and by OAuth
    client ID. A caller gets the intersection of its user's and its client's scope."""

    users: Mapping[str, KeyScope] = field(default_factory=dict)
    clients: Mapping[str, KeyScope] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.users or self.clients)

    def labelled(self) -> list[LabelledScope]:
        """Every entry as ``user:<login>`` / ``client:<id>`` with its scope (for
        :func:`unknown_tools`)."""
        return [LabelledScope(f"user:{name}", scope) for name, scope in self.users.items()] + [
            LabelledScope(f"client:{name}", scope) for name, scope in self.clients.items()
        ]

    def for_caller(self, gitea_login: str | None, client_id: str | None) -> KeyScope | None:
        user = self.users.get(gitea_login.lower()) if gitea_login else None
        client = self.clients.get(client_id) if client_id else None
        return intersect(user, client)


def _parse_scope_table(raw: Any, what: str, *, fold_case: bool) -> dict[str, KeyScope]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"{what} must be a mapping of names to scopes")
    table: dict[str, KeyScope] = {}
    for name, entry in raw.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{what}: every name must be a non-empty string")
        label = name.strip()[:60]
        if not isinstance(entry, dict):
            raise ValueError(f"{what}.{label} must be a mapping of scope fields")
        unknown = set(entry) - SCOPE_FIELDS
        if unknown:
            fields = ", ".join(sorted(map(str, unknown)))
            raise ValueError(f"{what}.{label} has unknown field(s): {fields}")
        try:
            scope = parse_scope(entry)
        except ValueError as error:
            raise ValueError(f"{what}.{label}: {error}") from None
        if scope is None:
            raise ValueError(f"{what}.{label} has no scope fields; leave it out instead")
        key = name.strip().lower() if fold_case else name.strip()
        if key in table:
            raise ValueError(f"{what}.{label} is listed twice")
        table[key] = scope
    return table


def parse_oauth_scopes(raw: Any) -> OAuthScopes:
    """``{users: {<gitea login>: scope}, clients: {<client id>: scope}}``, each scope with the
    fields a key entry may carry. Raises ValueError naming the entry."""
    if raw is None or raw == {}:
        return OAuthScopes()
    if not isinstance(raw, dict):
        raise ValueError("must be a mapping with 'users' and/or 'clients'")
    unknown = set(raw) - {"users", "clients"}
    if unknown:
        raise ValueError(f"has unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    return OAuthScopes(
        users=_parse_scope_table(raw.get("users"), "users", fold_case=True),
        clients=_parse_scope_table(raw.get("clients"), "clients", fold_case=False),
    )
