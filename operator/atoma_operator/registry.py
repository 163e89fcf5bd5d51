"""An in-memory index: stack small id -> the resources that mention it.

Fed by kopf's watch stream (every ADDED/MODIFIED/DELETED event), read by the chain
follower, so that an on-chain event costs one lookup here instead of a list call to
the apiserver: the follower's cost grows with chain events, not with resources.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from atoma_operator.kube import ObjectKey
from atoma_operator.reconcile.holds import HoldBook


class StackRegistry:
    """Also hands every body to the hold book: intents recorded in status hold their
    badge and gas coin, and a deleted resource's unresolved intents become orphans.

    Only open resources are kept per object. A final one costs nothing but a count for
    the condition gauge (plus its finish time when a retention TTL applies to it): the
    follower stops at Settled — a later claim of the stack's funds shows in the
    claimed-stacks view (`claimed.py`), not in the finished resource's status.
    """

    def __init__(self, holds: HoldBook | None = None, *, retain_finished: bool = False) -> None:
        self.holds = holds or HoldBook()
        self._retain = retain_finished  # the operator's TTL is set: every final one is due
        self._by_stack: dict[int, set[ObjectKey]] = defaultdict(set)
        self._stacks_of: dict[ObjectKey, frozenset[int]] = {}
        self._open: set[ObjectKey] = set()
        self._condition: dict[ObjectKey, str] = {}  # open resources
        # Final resources: counts per (kind, namespace, condition), and the few that are
        # not Ready by key (so a later change knows what to uncount). A listing starts the
        # counts of its scope over; watch events then adjust them.
        self._final_counts: Counter[tuple[str, str, str]] = Counter()
        self._final_odd: dict[ObjectKey, str] = {}
        self._finished: dict[ObjectKey, Finished] = {}
        self._listing: dict[tuple[str, str | None], set[ObjectKey]] = {}
        """Open resources seen so far by a listing in progress, per (kind, namespace)."""

    def observe(self, kind: str, event_type: str | None, body: dict[str, Any]) -> None:
        """Apply one watch event; `open` resources still wait for an on-chain outcome."""
        meta = body.get("metadata") or {}
        key = ObjectKey(kind, meta.get("namespace", ""), meta.get("name", ""))
        if event_type == "DELETED":
            self.forget(key, body)
            return
        self.holds.observe(key, body)
        if is_final(body) and not has_pending(body):
            was_final = key not in self._open and event_type not in ("ADDED", None)
            self._drop_open(key)
            if was_final:
                self._uncount_final(key)
            self._count_final(key, _condition_of(body))
            done = finished(body)
            if done is not None and (done.ttl is not None or self._retain):
                self._finished[key] = done
            else:
                self._finished.pop(key, None)
            return
        if key not in self._open and event_type not in ("ADDED", None):
            self._uncount_final(key)  # final before (e.g. its status was wiped)
        self._index(key, body)
        self._condition[key] = _condition_of(body)
        self._open.add(key)
        if event_type == "ADDED" and self._listing:
            for scope in ((kind, key.namespace), (kind, None)):
                if scope in self._listing:
                    self._listing[scope].add(key)

    def _index(self, key: ObjectKey, body: Mapping[str, Any]) -> None:
        stacks = frozenset(int(s) for s in (body.get("spec") or {}).get("stackSmallIds") or ())
        old = self._stacks_of.get(key, frozenset())
        for stack in old - stacks:
            self._discard(stack, key)
        for stack in stacks:
            self._by_stack[stack].add(key)
        self._stacks_of[key] = stacks

    def forget(self, key: ObjectKey, last: Mapping[str, Any] | None = None) -> None:
        """Gone: deleted (`last` is its final body), or found missing."""
        if key in self._open:
            self._drop_open(key)
        elif last is not None and is_final(last) and not has_pending(last):
            self._uncount_final(key)
        self.holds.forget(key, last)

    def begin_listing(self, kind: str, namespace: str | None) -> None:
        """A complete listing of `kind` (in `namespace`, None: all) follows: the final
        resources are counted again from it (some may have gone while not watching), and
        the open ones it shows are remembered until `listed` (only those: a listing of
        100,000 final resources costs no set of 100,000 names)."""
        self._listing[(kind, namespace)] = set()
        for k in [k for k in self._final_counts if k[0] == kind and namespace in (None, k[1])]:
            del self._final_counts[k]
        for key in [
            k for k in self._final_odd if k.kind == kind and namespace in (None, k.namespace)
        ]:
            del self._final_odd[key]

    def listed(self, kind: str, namespace: str | None) -> list[ObjectKey]:
        """A complete listing ended: every open resource it did not show was deleted while
        the watch was down. Forgets them (their intents become orphans); returns them."""
        seen = self._listing.pop((kind, namespace), set())
        gone = [
            k
            for k in self._stacks_of
            if k.kind == kind and namespace in (None, k.namespace) and k not in seen
        ]
        for key in gone:
            self.forget(key)
        return gone

    def _drop_open(self, key: ObjectKey) -> None:
        for stack in self._stacks_of.pop(key, frozenset()):
            self._discard(stack, key)
        self._open.discard(key)
        self._condition.pop(key, None)
        self._finished.pop(key, None)

    def _count_final(self, key: ObjectKey, cond: str) -> None:
        self._final_counts[(key.kind, key.namespace, cond)] += 1
        if cond != "Ready":
            self._final_odd[key] = cond

    def _uncount_final(self, key: ObjectKey) -> None:
        cond = self._final_odd.pop(key, "Ready")
        counted = (key.kind, key.namespace, cond)
        if self._final_counts[counted] > 0:
            self._final_counts[counted] -= 1
        if self._final_counts[counted] == 0:
            del self._final_counts[counted]
        self._finished.pop(key, None)

    def _discard(self, stack: int, key: ObjectKey) -> None:
        keys = self._by_stack.get(stack)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_stack[stack]

    def finished(self) -> dict[ObjectKey, Finished]:
        """Final resources a retention TTL applies to, and when they finished."""
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

        def count(kind: str, cond: str, n: int = 1) -> None:
            counts = out.setdefault(kind, {"Ready": 0, "Reconciling": 0, "Stalled": 0})
            counts[cond] = counts.get(cond, 0) + n

        for key, cond in self._condition.items():
            count(key.kind, cond)
        for (kind, _, cond), n in self._final_counts.items():
            count(kind, cond, n)
        return out

    def __len__(self) -> int:
        """Resources known: open ones plus the final ones counted."""
        return len(self._open) + sum(self._final_counts.values())


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
