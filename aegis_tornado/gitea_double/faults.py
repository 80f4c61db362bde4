"""Fault injection for the Gitea double: make it fail the way real Gitea deployments fail.

Set faults in-process (``app.faults.add("status", status=503, times=2)``) or, when the app was
built with ``control=True``, over HTTP (``POST /__double__/faults`` with the same fields as JSON).

Kinds:

``status``     answer ``status`` (default 500) with a Gitea JSON error body (or ``body`` verbatim)
               and any extra ``headers`` (e.g. ``{"Retry-After": "2"}``).
``hang``       say nothing for ``delay`` seconds (default 30; ends early when the client hangs up
               or :meth:`Faults.release` is called), then answer normally.
``slow``       wait ``delay`` seconds, then answer normally (stacks with one other fault).
``disconnect`` close the connection without answering (a reset, as from a crashing proxy).
``malformed``  200 with a body that is not valid JSON (the real body plus a trailing ``,}``).
``truncated``  200 with the real JSON cut in half; Content-Length matches what is sent.
``cut``        declare the full Content-Length, send half, then drop the connection.
``huge``       200 with a JSON array of ``size`` bytes (default 16 MiB), sent in chunks, with a
               Content-Length unless ``chunked`` is true.
``drip``       200 with a JSON array of ``size`` bytes sent 1 KiB at a time, ``delay`` seconds apart
               (each read is quick, the whole answer is not).
``redirect``   answer ``status`` (default 307) with ``Location: <location>``.
``mangle``     200 with the real JSON answer, some of its values replaced by values of other JSON
               types (``null``, numbers, strings such as ``".."``, lists, objects), chosen by
               ``seed``: valid JSON whose fields are not what Gitea's are.

Every fault may be limited to ``times`` requests (then it removes itself) and to requests whose
path contains ``path`` (e.g. ``"/issues"``). Connection refusal is not a fault: stop the server,
or point the client at a closed port.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Fault", "Faults", "FAULT_KINDS"]

FAULT_KINDS = frozenset(
    {
        "status",
        "hang",
        "slow",
        "disconnect",
        "malformed",
        "truncated",
        "cut",
        "huge",
        "drip",
        "redirect",
        "mangle",
    }
)
BODY_KINDS = frozenset({"malformed", "truncated", "cut", "mangle"})  # applied to the real answer

#: What ``mangle`` puts in place of a value.
STRANGE_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    2**63,
    1.5,
    "",
    "x",
    "..",
    ".",
    "/",
    "../.env",
    "a/../../b",
    "\u202e",
    [],
    [None],
    [1, "x"],
    {},
    {"x": None},
    {"name": 5, "login": []},
)


@dataclass
class Fault:
    kind: str
    status: int | None = None
    delay: float = 0.0
    times: int | None = None
    path: str | None = None
    size: int = 16 * 1024 * 1024
    chunked: bool = False
    location: str | None = None
    body: str | None = None
    headers: dict[str, str] | None = None
    seed: int = 0
    id: int = 0
    hits: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; choose from {sorted(FAULT_KINDS)}")
        if self.status is None:
            self.status = {"status": 500, "redirect": 307}.get(self.kind)
        if self.kind == "hang" and not self.delay:
            self.delay = 30.0
        if self.kind == "redirect" and not self.location:
            raise ValueError("a redirect fault needs a location")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1 (or omitted for 'until removed')")
        if self.delay < 0 or self.size < 0:
            raise ValueError("delay and size must not be negative")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Faults:
    """The active faults of one double, checked in the order they were added."""

    active: list[Fault] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1), repr=False)
    _release: asyncio.Event | None = field(default=None, repr=False)

    def add(self, kind: str, **options: Any) -> Fault:
        allowed = {
            "status",
            "delay",
            "times",
            "path",
            "size",
            "chunked",
            "location",
            "body",
            "headers",
            "seed",
        }
        unknown = set(options) - allowed
        if unknown:
            raise ValueError(f"unknown fault options {sorted(unknown)}")
        fault = Fault(kind, **options, id=next(self._ids))
        self.active.append(fault)
        return fault

    def remove(self, fault: Fault | int) -> bool:
        fault_id = fault if isinstance(fault, int) else fault.id
        before = len(self.active)
        self.active = [f for f in self.active if f.id != fault_id]
        return len(self.active) != before

    def clear(self) -> None:
        """Remove every fault and let any hanging request go."""
        self.active.clear()
        self.release()

    def release(self) -> None:
        """End every current ``hang`` now (they then answer normally)."""
        if self._release is not None:
            self._release.set()
            self._release = None

    def release_event(self) -> asyncio.Event:
        if self._release is None:
            self._release = asyncio.Event()
        return self._release

    def take(self, path: str) -> list[Fault]:
        """The faults for a request to ``path``: every matching ``slow`` plus the first other one.

        Counts a hit on each, and drops those whose ``times`` ran out.
        """
        chosen: list[Fault] = []
        other_taken = False
        for fault in list(self.active):
            if fault.path and fault.path not in path:
                continue
            if fault.kind != "slow":
                if other_taken:
                    continue
                other_taken = True
            chosen.append(fault)
            fault.hits += 1
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.remove(fault)
        return chosen

    def to_list(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self.active]


def mangle(data: Any, seed: int, rate: float = 0.25) -> Any:
    """``data`` with about ``rate`` of its values (at any depth) replaced from
    :data:`STRANGE_VALUES`, the same way for the same ``seed``. The top level and the items of a
    top-level list keep their type, so the answer passes a shape check and its insides are what
    gets tested."""
    rng = random.Random(seed)

    def walk(node: Any, keep_type: bool = False) -> Any:
        if not keep_type and rng.random() < rate:
            return rng.choice(STRANGE_VALUES)
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item, keep_type) for item in node]
        return node

    return walk(data, keep_type=True)
