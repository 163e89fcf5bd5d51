"""Conditional status writes that survive interference: a 409 means re-read and merge.

Every status write carries the resourceVersion it was based on, so the apiserver refuses
a write built on a stale read. But most 409s are harmless: a `kubectl label`, Argo CD or
Flux touching metadata, or the operator's own follower carrying a ticket into an entry
this pass is not working on. So on a 409 the writer re-reads the object and merges per
unit (a status entry: a stack, or a stack and a node):

* an entry this pass did not change since the last write takes the fresh version, unless
  the fresh one lost a digest ours knows (a wiped status never erases a digest);
* an entry this pass changed keeps ours, unless someone else recorded a digest ours
  does not know: then this pass is stale, and `StaleStatus` (a Conflict) ends it before
  anything more is sent.

A status wiped to nothing therefore gets every known digest written back.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Protocol

from atoma_operator.kube import Conflict, ObjectKey
from atoma_operator.reconcile.holds import unit_id
from atoma_operator.resources.common import StatusModel

ENTRY_LISTS = ("stacks", "attestations")
MAX_MERGES = 5


class StaleStatus(Conflict):
    """Another writer recorded progress for a unit this pass changed: re-read, decide again."""


class StatusStore(Protocol):
    """The two apiserver calls the writer needs (atoma_operator.kube.Kube has them)."""

    async def get(self, key: ObjectKey) -> dict[str, Any]: ...

    async def patch_status(
        self, key: ObjectKey, status: dict[str, Any], resource_version: str
    ) -> dict[str, Any]: ...


def knowledge(entry: Mapping[str, Any]) -> frozenset[str]:
    """The transaction digests an entry records: what must never be lost."""
    out = set(entry.get("failedTxDigests") or ())
    if entry.get("txDigest"):
        out.add(entry["txDigest"])
    pending = entry.get("pending") or {}
    if pending.get("digest"):
        out.add(pending["digest"])
    return frozenset(out)


def _entries(status: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in ENTRY_LISTS:
        for entry in status.get(name) or ():
            out[unit_id(entry)] = entry
    return out


def merge_entries(
    base: Mapping[str, Any], ours: Mapping[str, Any], fresh: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Per unit, what to adopt from `fresh` into `ours` (unit id -> fresh entry).

    `base` is the status as last confirmed by the server (read or written). Raises
    StaleStatus when a unit this pass changed was also advanced by someone else.
    """
    b, o, f = _entries(base), _entries(ours), _entries(fresh)
    adopt: dict[str, dict[str, Any]] = {}
    for unit, mine in o.items():
        theirs = f.get(unit)
        if theirs is None or theirs == mine:
            continue
        if mine == b.get(unit):  # untouched by this pass: theirs is newer
            if knowledge(theirs) >= knowledge(mine):
                adopt[unit] = theirs
        elif theirs != b.get(unit) and not knowledge(theirs) <= knowledge(mine):
            raise StaleStatus(f"status entry {unit} was advanced by another writer")
    for unit, theirs in f.items():
        if unit not in o and knowledge(theirs):
            raise StaleStatus(f"status entry {unit} was recorded by another writer")
    return adopt


def adopt_into(status: StatusModel, adopt: Mapping[str, dict[str, Any]]) -> None:
    """Copy the adopted entries into the live model in place: units of this pass hold
    references to their entry objects, so the objects stay the same."""
    if not adopt:
        return
    for name in ENTRY_LISTS:
        for entry in getattr(status, name, None) or ():
            raw = adopt.get(unit_id(entry.to_k8s()))
            if raw is None:
                continue
            fresh = type(entry).model_validate(raw)
            for field_name in type(entry).model_fields:
                setattr(entry, field_name, getattr(fresh, field_name))


class ConditionalStatusWriter:
    """Writes a resource's status, always conditional, merging through 409s."""

    def __init__(self, store: StatusStore, key: ObjectKey, obj: Mapping[str, Any]) -> None:
        self._store = store
        self._key = key
        self._rv: str = obj["metadata"]["resourceVersion"]
        self._base: dict[str, Any] = copy.deepcopy(dict(obj.get("status") or {}))
        self.writes = 0

    @property
    def base(self) -> Mapping[str, Any]:
        """The status as the server last confirmed it."""
        return self._base

    async def __call__(self, status: StatusModel) -> None:
        """Write `status` (the live model, refreshed in place on a merge). NotFound and
        StaleStatus propagate; an unknown failure propagates as it is (may have landed)."""
        for _ in range(MAX_MERGES):
            raw = status.to_k8s()
            try:
                updated = await self._store.patch_status(self._key, raw, self._rv)
            except Conflict:
                fresh = await self._store.get(self._key)
                adopt = merge_entries(self._base, raw, fresh.get("status") or {})
                adopt_into(status, adopt)
                self._rv = fresh["metadata"]["resourceVersion"]
                self._base = copy.deepcopy(dict(fresh.get("status") or {}))
                continue
            self._rv = updated["metadata"]["resourceVersion"]
            self._base = raw
            self.writes += 1
            return
        raise Conflict(f"{self._key.kind} {self._key.name}: status kept changing during a write")

    async def write_raw(self, status: dict[str, Any]) -> None:
        """Write resource-level fields (conditions, observedGeneration) onto the status as
        it stands on the server, entries untouched (used when the models cannot be read)."""
        for _ in range(MAX_MERGES):
            try:
                updated = await self._store.patch_status(self._key, status, self._rv)
            except Conflict:
                fresh = await self._store.get(self._key)
                status = {
                    **(fresh.get("status") or {}),
                    "conditions": status.get("conditions"),
                    "observedGeneration": status.get("observedGeneration"),
                }
                self._rv = fresh["metadata"]["resourceVersion"]
                continue
            self._rv = updated["metadata"]["resourceVersion"]
            self._base = status
            self.writes += 1
            return
        raise Conflict(f"{self._key.kind} {self._key.name}: status kept changing during a write")
