"""Fault injection for the sandbox: slow responses, error statuses, dropped and cut-off connections.

A :class:`FaultPlan` is an ordered list of :class:`FaultRule`. For every vendor request the server
asks the plan what to do. Each rule that matches the request (vendor, method, path) counts it;
its selectors then decide whether this particular match is hit:

- ``nth``: hit only these 1-based match numbers (``[2, 5]`` = the 2nd and 5th matching request),
- ``every``: hit every k-th match,
- ``probability``: hit with this probability, drawn from a RNG seeded from the plan's seed,
- ``times``: stop after this many hits.

Selectors combine with AND; a rule without selectors hits every match. Latency from all hitting
rules adds up; the first hitting rule of another kind decides the outcome:

- ``status``: answer with ``status``, ``body`` (JSON unless it is a string) and ``headers``
  instead of letting the emulator handle the request (so a failed write is not applied);
  ``when="after"``: the emulator handles the request first (a write is applied) and the client gets
  this answer instead of the real one (a 500 after booking, a 200 without the new id),
- ``reset``: close the connection without answering (``when="after"``: after the emulator handled
  the request, i.e. the write was applied but the client never hears about it),
- ``truncate``: send the headers with the full ``Content-Length`` and only half the body, then
  close the connection.

Rules are plain JSON (:meth:`FaultRule.to_dict` / :meth:`FaultRule.from_dict`) so other processes can
install them through ``POST /_sandbox/faults`` or the ``--fault`` command-line option.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = [
    "FAULT_KINDS",
    "FaultDecision",
    "FaultPlan",
    "FaultRule",
    "latency_fault",
    "reset_fault",
    "status_fault",
    "truncate_fault",
]

FAULT_KINDS = ("latency", "status", "reset", "truncate")


@dataclass
class FaultRule:
    """One fault: what it does (``kind``), which requests it targets, and which of those it hits."""

    kind: str
    vendor: str = "*"
    path: str | None = None
    """Regular expression searched (case-insensitively) in the path after the vendor prefix,
    including the query string when there is one, e.g. ``/ProfitRestServices/connectors/X?skip=0``."""
    method: str | None = None
    status: int = 503
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    latency_ms: int = 0
    nth: list[int] | None = None
    every: int | None = None
    times: int | None = None
    probability: float | None = None
    when: str = "before"
    name: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}, not {self.kind!r}")
        if self.when not in ("before", "after"):
            raise ValueError("fault 'when' must be 'before' or 'after'")
        if self.every is not None and self.every < 1:
            raise ValueError("fault 'every' must be at least 1")
        if self.times is not None and self.times < 0:
            raise ValueError("fault 'times' must not be negative")
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise ValueError("fault 'probability' must be between 0 and 1")
        if self.nth is not None:
            self.nth = sorted({int(n) for n in self.nth})
        if self.kind == "latency" and self.latency_ms <= 0:
            raise ValueError("a latency fault needs latency_ms > 0")
        self._path_re = re.compile(self.path, re.IGNORECASE) if self.path else None
        self.method = self.method.upper() if self.method else None

    def matches(self, vendor: str, method: str, target: str) -> bool:
        if self.vendor not in ("*", vendor):
            return False
        if self.method and self.method != method:
            return False
        return self._path_re is None or self._path_re.search(target) is not None

    def response_body(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, separators=(",", ":")).encode()

    def response_content_type(self) -> str:
        if self.content_type:
            return self.content_type
        if self.body is None or not isinstance(self.body, str):
            return "application/json; charset=utf-8"
        return "text/plain; charset=utf-8"

    def to_dict(self) -> dict[str, Any]:
        """The rule as JSON-ready data, leaving out fields that still have their default."""
        result: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            default = item.default_factory() if callable(item.default_factory) else item.default
            if item.name == "kind" or (item.name == "status" and self.kind == "status") or value != default:
                result[item.name] = value
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        if not isinstance(data, Mapping):
            raise ValueError(f"a fault rule must be a JSON object, not {type(data).__name__}")
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault rule field(s): {', '.join(unknown)}")
        if "kind" not in data:
            raise ValueError("a fault rule needs a 'kind'")
        return cls(**dict(data))


@dataclass(frozen=True)
class FaultDecision:
    """What the server does with one request: extra latency and, optionally, a fault outcome."""

    latency_ms: int = 0
    rule: FaultRule | None = None

    @property
    def kind(self) -> str | None:
        return self.rule.kind if self.rule else None


_NO_FAULT = FaultDecision()


class _RuleState:
    __slots__ = ("hits", "matched", "rng", "rule")

    def __init__(self, rule: FaultRule, rng: random.Random) -> None:
        self.rule = rule
        self.matched = 0
        self.hits = 0
        self.rng = rng

    def hit(self) -> bool:
        """Count one matching request and decide whether the rule fires for it."""
        rule = self.rule
        self.matched += 1
        n = self.matched
        fires = True
        if rule.nth is not None and n not in rule.nth:
            fires = False
        if rule.every is not None and n % rule.every:
            fires = False
        if rule.probability is not None:
            # Draw for every match, so the sequence does not depend on the other selectors.
            fires = (self.rng.random() < rule.probability) and fires
        if rule.times is not None and self.hits >= rule.times:
            fires = False
        if fires:
            self.hits += 1
        return fires


class FaultPlan:
    """The active fault rules of a sandbox. Thread-safe; decisions are deterministic per seed."""

    def __init__(self, rules: Iterable[FaultRule | Mapping[str, Any]] = (), seed: int = 0) -> None:
        self._seed = seed
        self._lock = threading.Lock()
        self._states: list[_RuleState] = []
        self.replace(rules)

    @staticmethod
    def _coerce(rule: FaultRule | Mapping[str, Any]) -> FaultRule:
        return rule if isinstance(rule, FaultRule) else FaultRule.from_dict(rule)

    def _state(self, rule: FaultRule, index: int) -> _RuleState:
        return _RuleState(rule, random.Random(f"{self._seed}:fault:{index}"))

    def replace(self, rules: Iterable[FaultRule | Mapping[str, Any]]) -> None:
        """Install a new list of rules; match and hit counters start again from zero."""
        coerced = [self._coerce(rule) for rule in rules]
        with self._lock:
            self._states = [self._state(rule, index) for index, rule in enumerate(coerced)]

    def add(self, rule: FaultRule | Mapping[str, Any]) -> FaultRule:
        coerced = self._coerce(rule)
        with self._lock:
            self._states.append(self._state(coerced, len(self._states)))
        return coerced

    def clear(self) -> None:
        self.replace(())

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return [state.rule for state in self._states]

    def __len__(self) -> int:
        return len(self._states)

    def to_list(self) -> list[dict[str, Any]]:
        """The rules with their counters (``matched``, ``hits``), as served by ``GET /_sandbox/faults``."""
        with self._lock:
            return [
                {**state.rule.to_dict(), "matched": state.matched, "hits": state.hits}
                for state in self._states
            ]

    def decide(self, vendor: str, method: str, target: str) -> FaultDecision:
        if not self._states:
            return _NO_FAULT
        latency = 0
        outcome: FaultRule | None = None
        with self._lock:
            for state in self._states:
                if not state.rule.matches(vendor, method, target):
                    continue
                if not state.hit():
                    continue
                if state.rule.kind == "latency":
                    latency += state.rule.latency_ms
                elif outcome is None:
                    outcome = state.rule
        if not latency and outcome is None:
            return _NO_FAULT
        return FaultDecision(latency, outcome)


def _selectors(
    nth: Iterable[int] | None, every: int | None, times: int | None, probability: float | None
) -> dict[str, Any]:
    return {
        "nth": list(nth) if nth is not None else None,
        "every": every,
        "times": times,
        "probability": probability,
    }


def status_fault(
    status: int,
    body: Any = None,
    *,
    vendor: str = "*",
    path: str | None = None,
    method: str | None = None,
    retry_after: int | None = None,
    headers: Mapping[str, str] | None = None,
    content_type: str | None = None,
    when: str = "before",
    nth: Iterable[int] | None = None,
    every: int | None = None,
    times: int | None = None,
    probability: float | None = None,
    name: str | None = None,
) -> FaultRule:
    """Answer matching requests with ``status`` (``retry_after`` adds a ``Retry-After`` header).

    ``when="after"`` lets the emulator handle the request first, so a write is applied and its real
    answer is replaced by this one."""
    all_headers = dict(headers or {})
    if retry_after is not None:
        all_headers["Retry-After"] = str(retry_after)
    return FaultRule(
        kind="status",
        vendor=vendor,
        path=path,
        method=method,
        status=status,
        body=body,
        headers=all_headers,
        content_type=content_type,
        when=when,
        name=name,
        **_selectors(nth, every, times, probability),
    )


def latency_fault(
    latency_ms: int,
    *,
    vendor: str = "*",
    path: str | None = None,
    method: str | None = None,
    nth: Iterable[int] | None = None,
    every: int | None = None,
    times: int | None = None,
    probability: float | None = None,
    name: str | None = None,
) -> FaultRule:
    """Delay matching requests by ``latency_ms`` on top of the sandbox-wide latency."""
    return FaultRule(
        kind="latency",
        vendor=vendor,
        path=path,
        method=method,
        latency_ms=latency_ms,
        name=name,
        **_selectors(nth, every, times, probability),
    )


def reset_fault(
    *,
    vendor: str = "*",
    path: str | None = None,
    method: str | None = None,
    when: str = "before",
    nth: Iterable[int] | None = None,
    every: int | None = None,
    times: int | None = None,
    probability: float | None = None,
    name: str | None = None,
) -> FaultRule:
    """Drop the connection without a response (``when="after"``: after the request was handled)."""
    return FaultRule(
        kind="reset",
        vendor=vendor,
        path=path,
        method=method,
        when=when,
        name=name,
        **_selectors(nth, every, times, probability),
    )


def truncate_fault(
    *,
    vendor: str = "*",
    path: str | None = None,
    method: str | None = None,
    nth: Iterable[int] | None = None,
    every: int | None = None,
    times: int | None = None,
    probability: float | None = None,
    name: str | None = None,
) -> FaultRule:
    """Send only half of the response body (with the full ``Content-Length``), then close."""
    return FaultRule(
        kind="truncate",
        vendor=vendor,
        path=path,
        method=method,
        name=name,
        **_selectors(nth, every, times, probability),
    )
