"""Which unresolved transaction holds which owned object: the one owner of every hold.

Sui lets one version of an owned object (a node badge, a gas coin) go into one
transaction; a second, different transaction on the same version equivocates. So from
the moment a transaction is signed until its outcome is known, its owned inputs are
*held* by its digest and nothing new may be built on them. A hold comes from one of:

* this process (`claim`): signed here, its intent being or already recorded in status;
* a resource's status (`observe`): an intent recorded before a restart or failover,
  seen through kopf's watch before any handler runs;
* a deleted (or pruned) resource whose intent was unresolved (`forget`): an *orphan*,
  resolved in the background so its badge and coin are not held forever.

Every exit path ends in `release`: the outcome became known (executed, refused, expired)
or the intent provably never reached status (a 409/404 on its write). The book also keeps
each claimed intent by unit, so a status wiped or a write lost while an outcome is unknown
is re-recorded instead of forgotten (`intent_for`). Its memory is bounded by the live
resources and their unresolved transactions.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from atoma_operator.kube import ObjectKey
from atoma_operator.resources.submission import PendingTransaction
from atoma_operator.sui.txbuild import normalize_id, owned_inputs

RESOLVED_MEMORY_SECONDS = 600.0
"""How long a resolved digest masks a watch that still shows it pending. The watch
normally catches up in well under a second; entries older than this (and no longer
shown anywhere) are dropped, so the set stays bounded."""


@dataclass(frozen=True)
class UnitRef:
    """One transaction's worth of work of one resource (a stack, or a stack and badge)."""

    owner: ObjectKey
    unit: str


@dataclass
class _Intent:
    unit: UnitRef
    pending: PendingTransaction
    objects: frozenset[str]
    orphaned: bool = False
    confirmed: bool = False  # its record is known to be in status (sent only if so)
    maybe_sent: bool = False  # it was confirmed once: it may have been sent since
    expiry_checks: int = 0
    expiry_first_seen: float | None = None


def _bcs_owned_inputs(tx_bytes: str) -> list[str]:
    return [ref.object_id for ref in owned_inputs(tx_bytes)]


@dataclass
class HoldBook:
    """See the module docstring. Synchronous: asyncio runs it on one thread."""

    clock: Callable[[], float] = time.monotonic
    inputs_of: Callable[[str], list[str]] = _bcs_owned_inputs
    """Owned input object ids of recorded transaction bytes (the gas coin aside)."""
    _claims: dict[str, _Intent] = field(default_factory=dict)  # digest -> intent signed here
    _by_unit: dict[UnitRef, str] = field(default_factory=dict)
    _live: dict[str, str] = field(default_factory=dict)  # object id -> digest (claims)
    _recorded_of: dict[ObjectKey, frozenset[tuple[str, str]]] = field(default_factory=dict)
    _recorded: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    _resolved: dict[str, float] = field(default_factory=dict)  # digest -> when
    _resolved_for: dict[str, ObjectKey] = field(default_factory=dict)  # digest -> its resource
    _listeners: list[Callable[[], None]] = field(default_factory=list)
    _object_listeners: list[Callable[[frozenset[str]], None]] = field(default_factory=list)

    # -- who holds what -------------------------------------------------------------------

    def holder(self, object_id: str) -> str | None:
        """The unresolved transaction that holds this owned object, if any."""
        oid = normalize_id(object_id)
        live = self._live.get(oid)
        if live is not None:
            return live
        recorded = sorted(d for d in self._recorded.get(oid, ()) if d not in self._resolved)
        return recorded[0] if recorded else None

    def is_held(self, object_id: str) -> bool:
        return self.holder(object_id) is not None

    def on_release(self, listener: Callable[[], None]) -> None:
        """Called after any hold goes away (the gas pool wakes its waiters)."""
        self._listeners.append(listener)

    def on_release_of(self, listener: Callable[[frozenset[str]], None]) -> None:
        """Called with the objects (badge, coin) a resolved transaction held: the
        controller wakes the resources waiting for them."""
        self._object_listeners.append(listener)

    # -- holds made by this process -------------------------------------------------------

    def claim(self, unit: UnitRef, pending: PendingTransaction, objects: Iterable[str]) -> None:
        """Hold `objects` (badge, gas coin) for this signed transaction, before its intent
        is written: whatever happens to the write, nothing else is built on them."""
        held = frozenset(normalize_id(o) for o in objects)
        self._claims[pending.digest] = _Intent(unit, pending, held)
        self._by_unit[unit] = pending.digest
        for oid in held:
            # Two recorded intents on one object (a stale record beside a newer one, seen
            # after a restart): the first keeps it; the other resumes by lookup only.
            self._live.setdefault(oid, pending.digest)

    def adopt(self, unit: UnitRef, pending: PendingTransaction) -> None:
        """Track a recorded intent found in status (after a restart) as claimed here, so a
        later status wipe or deletion cannot lose it."""
        if pending.digest in self._claims:
            return
        objects = {pending.gas_coin.object_id}
        with contextlib.suppress(Exception):  # unreadable bytes: the gas coin is still held
            objects |= set(self.inputs_of(pending.tx_bytes))
        self.claim(unit, pending, objects)
        self.confirm(pending.digest)

    def confirm(self, digest: str) -> None:
        """The intent's status write landed: from now on it may be sent."""
        if digest in self._claims:
            self._claims[digest].confirmed = True
            self._claims[digest].maybe_sent = True

    def unconfirm(self, digest: str) -> None:
        """Status lost the intent (wiped, or a write that failed): record it again first."""
        if digest in self._claims:
            self._claims[digest].confirmed = False

    def is_confirmed(self, digest: str) -> bool:
        intent = self._claims.get(digest)
        return intent is not None and intent.confirmed

    def may_have_been_sent(self, digest: str) -> bool:
        """False only for an intent whose record never landed: nothing ever sent it."""
        intent = self._claims.get(digest)
        return intent is None or intent.maybe_sent

    def intent_for(self, unit: UnitRef) -> PendingTransaction | None:
        """The unresolved intent this process knows for the unit (status may have lost it)."""
        digest = self._by_unit.get(unit)
        if digest is None or self._claims[digest].orphaned:
            return None  # an orphan belongs to a resource that is gone, not to a namesake
        return self._claims[digest].pending

    def intent_for_digest(self, digest: str) -> PendingTransaction | None:
        intent = self._claims.get(digest)
        return intent.pending if intent is not None else None

    def release(self, digest: str, *, recorded: bool = True) -> None:
        """The transaction's outcome is known, or its intent never reached status.

        `recorded=False` only when the intent write was refused (409, 404): nothing on the
        watch will ever show it, so there is nothing to mask.
        """
        intent = self._claims.pop(digest, None)
        if intent is not None:
            if self._by_unit.get(intent.unit) == digest:
                del self._by_unit[intent.unit]
            for oid in intent.objects:
                if self._live.get(oid) == digest:
                    del self._live[oid]
        if recorded:
            self._resolved[digest] = self.clock()
            if intent is not None:
                self._resolved_for[digest] = intent.unit.owner
        self._prune_resolved()
        for listener in self._listeners:
            listener()
        if intent is not None:
            for object_listener in self._object_listeners:
                object_listener(intent.objects)

    def resolved_for(self, digest: str) -> ObjectKey | None:
        """The resource whose pass in this process learned the transaction's outcome (and
        applied it to that resource's status), if any."""
        return self._resolved_for.get(digest)

    def expiry_evidence(self, digest: str) -> tuple[int, float]:
        """One more lookup found the coin moved on and the digest unknown; returns how
        many such lookups in a row and over how many seconds (lagging nodes behind a load
        balancer can miss an executed transaction once, not for long)."""
        intent = self._claims.get(digest)
        if intent is None:
            return (1, 0.0)
        now = self.clock()
        if intent.expiry_first_seen is None:
            intent.expiry_first_seen = now
        intent.expiry_checks += 1
        return (intent.expiry_checks, now - intent.expiry_first_seen)

    def found_again(self, digest: str) -> None:
        """The coin is back at (or the node shows) the recorded version: reset the evidence."""
        intent = self._claims.get(digest)
        if intent is not None:
            intent.expiry_checks, intent.expiry_first_seen = 0, None

    # -- holds recorded in status (the watch) ---------------------------------------------

    def observe(self, key: ObjectKey, body: Mapping[str, Any]) -> None:
        """A resource as the watch shows it: its recorded intents hold their objects."""
        self._set_recorded(key, recorded_holds(body, self.inputs_of, self._claimed_objects))

    def _claimed_objects(self, digest: str) -> frozenset[str] | None:
        intent = self._claims.get(digest)
        return intent.objects if intent is not None else None

    def forget(self, key: ObjectKey, last: Mapping[str, Any] | None = None) -> None:
        """The resource is gone: its unresolved intents become orphans to resolve."""
        for digest in [d for d, i in self._claims.items() if i.unit.owner == key]:
            self._claims[digest].orphaned = True
        for unit, pending in pending_intents(last or {}):
            if pending.digest not in self._claims:
                self.adopt(UnitRef(key, unit), pending)
            self._claims[pending.digest].orphaned = True
        self._set_recorded(key, frozenset())

    def orphans(self) -> list[PendingTransaction]:
        return [i.pending for i in self._claims.values() if i.orphaned]

    def is_orphan(self, digest: str) -> bool:
        intent = self._claims.get(digest)
        return intent is not None and intent.orphaned

    def _set_recorded(self, key: ObjectKey, holds: frozenset[tuple[str, str]]) -> None:
        for oid, digest in self._recorded_of.pop(key, frozenset()) - holds:
            self._recorded[oid].discard(digest)
            if not self._recorded[oid]:
                del self._recorded[oid]
        for oid, digest in holds:
            self._recorded[oid].add(digest)
        if holds:
            self._recorded_of[key] = holds
        self._prune_resolved()

    def _prune_resolved(self) -> None:
        if not self._resolved:
            return
        shown = {d for digests in self._recorded.values() for d in digests}
        horizon = self.clock() - RESOLVED_MEMORY_SECONDS
        for digest, when in list(self._resolved.items()):
            if digest not in shown and when < horizon:
                del self._resolved[digest]
                self._resolved_for.pop(digest, None)

    def sizes(self) -> dict[str, int]:
        """Entry counts, for tests that check memory is bounded by live resources."""
        return {
            "claims": len(self._claims),
            "live": len(self._live),
            "recorded_resources": len(self._recorded_of),
            "recorded_objects": len(self._recorded),
            "resolved": len(self._resolved),
        }


def pending_intents(body: Mapping[str, Any]) -> list[tuple[str, PendingTransaction]]:
    """(unit id, intent) for every recorded, unresolved transaction in a resource's status."""
    status = body.get("status") or {}
    out: list[tuple[str, PendingTransaction]] = []
    for entry in [*(status.get("stacks") or []), *(status.get("attestations") or [])]:
        raw = entry.get("pending")
        if not raw:
            continue
        try:
            pending = PendingTransaction.model_validate(raw)
        except Exception:  # a hand-edited status: resume reports it, nothing to hold
            continue
        out.append((unit_id(entry), pending))
    return out


def unit_id(entry: Mapping[str, Any]) -> str:
    """The unit a status entry stands for (same id for both kinds' raw entries)."""
    stack = entry.get("stackSmallId")
    node = entry.get("nodeSmallId")
    return f"stack/{stack}" if node is None else f"stack/{stack}/node/{node}"


def recorded_holds(
    body: Mapping[str, Any],
    inputs_of: Callable[[str], list[str]] = _bcs_owned_inputs,
    known: Callable[[str], frozenset[str] | None] = lambda _digest: None,
) -> frozenset[tuple[str, str]]:
    """(owned object id, digest) for every recorded intent: its badge and its gas coin.

    Every watch event of a resource with an intent asks this; the answer for one intent
    never changes: an intent signed by this process (`known`: digest -> the objects it
    claimed) is not decoded at all, and other bytes are decoded once (`_owned_ids`).
    """
    out: set[tuple[str, str]] = set()
    status = body.get("status") or {}
    for entry in [*(status.get("stacks") or []), *(status.get("attestations") or [])]:
        raw = entry.get("pending")
        if not raw:
            continue
        digest = raw.get("digest") if isinstance(raw, Mapping) else None
        claimed = known(digest) if isinstance(digest, str) else None
        if isinstance(digest, str) and claimed is not None:
            out.update((oid, digest) for oid in claimed)
        else:
            out.update(_intent_holds(raw, inputs_of))
    return frozenset(out)


def _intent_holds(
    raw: Mapping[str, Any], inputs_of: Callable[[str], list[str]]
) -> frozenset[tuple[str, str]]:
    try:
        pending = PendingTransaction.model_validate(raw)
    except Exception:  # a hand-edited status: resume reports it, nothing to hold
        return frozenset()
    out = {(normalize_id(pending.gas_coin.object_id), pending.digest)}
    ids = _owned_ids(inputs_of, pending.digest, pending.tx_bytes)
    out.update((oid, pending.digest) for oid in ids)
    return frozenset(out)


@functools.lru_cache(maxsize=4096)
def _owned_ids(
    inputs_of: Callable[[str], list[str]], digest: str, tx_bytes: str
) -> tuple[str, ...]:
    """The owned inputs of an intent's bytes: decoded once per intent, not once per watch
    event that shows it."""
    try:
        return tuple(normalize_id(oid) for oid in inputs_of(tx_bytes))
    except Exception:  # unreadable bytes: the gas coin is still held
        return ()
