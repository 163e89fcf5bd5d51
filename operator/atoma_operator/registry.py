"""An in-memory index: stack small id -> the resources that mention it.

Fed by kopf's watch stream (every ADDED/MODIFIED/DELETED event), read by the chain
follower, so that an on-chain event costs one lookup here instead of a list call to
the apiserver: the follower's cost grows with chain events, not with resources.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from atoma_operator.kube import ObjectKey
from atoma_operator.reconcile.holds import HoldBook


class StackRegistry:
    """Also hands every body to the hold book: intents recorded in status hold their
    badge and gas coin, and a deleted resource's unresolved intents become orphans."""

    def __init__(self, holds: HoldBook | None = None) -> None:
        self.holds = holds or HoldBook()
        self._by_stack: dict[int, set[ObjectKey]] = defaultdict(set)
        self._stacks_of: dict[ObjectKey, frozenset[int]] = {}
        self._open: set[ObjectKey] = set()
        self._condition: dict[ObjectKey, str] = {}
        self._finished: dict[ObjectKey, Finished] = {}

    def observe(self, kind: str, event_type: str | None, body: dict[str, Any]) -> None:
        """Apply one watch event; `open` resources still wait for an on-chain outcome."""
        meta = body.get("metadata") or {}
        key = ObjectKey(kind, meta.get("namespace", ""), meta.get("name", ""))
        if event_type == "DELETED":
            self.forget(key, body)
            return
        stacks = frozenset(int(s) for s in (body.get("spec") or {}).get("stackSmallIds") or ())
        old = self._stacks_of.get(key, frozenset())
        for stack in old - stacks:
            self._discard(stack, key)
        for stack in stacks:
            self._by_stack[stack].add(key)
        self._stacks_of[key] = stacks
        self._condition[key] = _condition_of(body)
        self.holds.observe(key, body)
        done = finished(body)
        if done is None:
            self._finished.pop(key, None)
        else:
            self._finished[key] = done
        if is_final(body):
            self._open.discard(key)
        else:
            self._open.add(key)

    def forget(self, key: ObjectKey, last: Mapping[str, Any] | None = None) -> None:
        for stack in self._stacks_of.pop(key, frozenset()):
            self._discard(stack, key)
        self._open.discard(key)
        self._condition.pop(key, None)
        self._finished.pop(key, None)
        self.holds.forget(key, last)

    def _discard(self, stack: int, key: ObjectKey) -> None:
        keys = self._by_stack.get(stack)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_stack[stack]

    def finished(self) -> dict[ObjectKey, Finished]:
        """Final resources with nothing pending, and when they finished (retention)."""
        return dict(self._finished)

    def resources_for(self, stack_small_id: int) -> set[ObjectKey]:
        return set(self._by_stack.get(stack_small_id, ()))

    def open_resources(self) -> Iterable[ObjectKey]:
        return list(self._open)

    def stacks_of(self, key: ObjectKey) -> frozenset[int]:
        return self._stacks_of.get(key, frozenset())

    def condition_counts(self) -> dict[str, dict[str, int]]:
        """Resources per kind and summarised condition, for the metrics gauge."""
        out: dict[str, dict[str, int]] = {}
        for key, cond in self._condition.items():
            counts = out.setdefault(key.kind, {"Ready": 0, "Reconciling": 0, "Stalled": 0})
            counts[cond] = counts.get(cond, 0) + 1
        return out

    def __len__(self) -> int:
        return len(self._stacks_of)


def has_pending(body: Mapping[str, Any]) -> bool:
    """A write-ahead intent is recorded somewhere: the resource must still be resumed."""
    status = body.get("status") or {}
    entries = [*(status.get("stacks") or []), *(status.get("attestations") or [])]
    return any(e.get("pending") for e in entries)


FINAL_PHASES = frozenset({"Settled", "Failed", "Disputed"})


def is_final(body: Mapping[str, Any]) -> bool:
    """Nothing on chain can change the resource any more: every entry is Settled, Failed
    or Disputed. (A Stalled resource may still have stacks the follower must carry.)"""
    status = body.get("status") or {}
    entries = [*(status.get("stacks") or []), *(status.get("attestations") or [])]
    reconciling = any(
        c.get("type") == "Reconciling" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )  # e.g. an Attestation still waiting for another stack's ticket
    return (
        bool(entries) and not reconciling and all(e.get("phase") in FINAL_PHASES for e in entries)
    )


def _condition_of(body: Mapping[str, Any]) -> str:
    conditions = (body.get("status") or {}).get("conditions") or []
    state = {c.get("type"): c.get("status") for c in conditions}
    if state.get("Stalled") == "True":
        return "Stalled"
    if state.get("Ready") == "True":
        return "Ready"
    return "Reconciling"


@dataclass(frozen=True)
class Finished:
    uid: str | None
    at: datetime
    ttl: float | None  # the resource's own; None: the operator's setting


def finished(body: Mapping[str, Any]) -> Finished | None:
    """When the resource finished and its own TTL, or None while it is not final."""
    if not is_final(body) or has_pending(body):
        return None
    times = [
        c.get("lastTransitionTime")
        for c in (body.get("status") or {}).get("conditions") or []
        if c.get("lastTransitionTime")
    ]
    if not times:
        return None
    at = max(datetime.fromisoformat(str(t).replace("Z", "+00:00")) for t in times)
    ttl = (body.get("spec") or {}).get("ttlSecondsAfterFinished")
    return Finished((body.get("metadata") or {}).get("uid"), at, ttl)
