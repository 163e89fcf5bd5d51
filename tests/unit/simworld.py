"""An in-memory cluster and chain that misbehave on request, for the protocol's property test.

`SimCluster` is the part of the apiserver a reconcile pass uses (get, conditional status
patch) plus a watch queue; before a resource's next status write it can answer 409 (a
label or annotation landed first), lose the write (it landed, the client saw an error),
fail it (did not land), wipe the status or delete the object. `SimChain` extends the
fake gateway with Sui's current lock rule (a different transaction on a locked object
reference is refused; the winner's new version is free at once), transactions that stay
in flight after a lost response and execute later, lookups that lag behind, and outages.
Both record what the invariants need: every digest ever written into a status, every
(object, version) a transaction was signed with.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from fakes import FakeGateway, Succeed, _owned

from atoma_operator.kube import Conflict, NotFound, ObjectKey
from atoma_operator.reconcile.statuswrite import knowledge
from atoma_operator.sui.errors import ChainUnavailable, RejectionKind, TransactionRejected
from atoma_operator.sui.types import MoveCall, ObjectRef, SignedTransaction, TxOutcome

GROUP_VERSION = "atoma.network/v1alpha1"


def fake_owned_inputs(tx_bytes: str) -> list[str]:
    """The fake gateway's transaction bytes are JSON: its owned inputs (badges)."""
    payload = json.loads(base64.b64decode(tx_bytes))
    return [a[1] for a in payload["args"] if a[0] == "owned"]


def status_digests(status: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for name in ("stacks", "attestations"):
        for entry in status.get(name) or ():
            out |= knowledge(entry)
    return out


@dataclass
class SimCluster:
    objects: dict[ObjectKey, dict[str, Any]] = field(default_factory=dict)
    watch: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    armed: dict[ObjectKey, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    ever_recorded: set[str] = field(default_factory=set)
    destroyed: set[str] = field(default_factory=set)
    """Digests whose record a user destroyed (status wiped, resource deleted)."""
    writes: int = 0
    _rv: int = 1

    def _bump(self, obj: dict[str, Any], event: str = "MODIFIED") -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self.watch.append((event, copy.deepcopy(obj)))

    def create(self, key: ObjectKey, spec: dict[str, Any]) -> None:
        obj = {
            "apiVersion": GROUP_VERSION,
            "kind": key.kind,
            "metadata": {"name": key.name, "namespace": key.namespace, "generation": 1},
            "spec": spec,
        }
        self.objects[key] = obj
        self._bump(obj, "ADDED")

    def label(self, key: ObjectKey) -> None:
        obj = self.objects.get(key)
        if obj is not None:
            labels = obj["metadata"].setdefault("labels", {})
            labels["touched"] = str(int(labels.get("touched", "0")) + 1)
            self._bump(obj)

    def wipe(self, key: ObjectKey) -> None:
        obj = self.objects.get(key)
        if obj is not None:
            self.destroyed |= status_digests(obj.pop("status", None) or {})
            self._bump(obj)

    def delete(self, key: ObjectKey) -> None:
        obj = self.objects.pop(key, None)
        if obj is not None:
            self.destroyed |= status_digests(obj.get("status") or {})
            self._rv += 1
            self.watch.append(("DELETED", copy.deepcopy(obj)))

    # -- StatusStore -------------------------------------------------------------------------

    async def get(self, key: ObjectKey) -> dict[str, Any]:
        await asyncio.sleep(0)
        obj = self.objects.get(key)
        if obj is None:
            raise NotFound(f"{key} not found")
        return copy.deepcopy(obj)

    async def patch_status(
        self, key: ObjectKey, status: dict[str, Any], resource_version: str
    ) -> dict[str, Any]:
        await asyncio.sleep(0)
        fault = self.armed[key].popleft() if self.armed.get(key) else None
        if fault == "label":
            self.label(key)
        elif fault == "wipe":
            self.wipe(key)
        elif fault == "delete":
            self.delete(key)
        elif fault == "fail":
            raise OSError("connection reset before the write reached the apiserver")
        obj = self.objects.get(key)
        if obj is None:
            raise NotFound(f"{key} not found")
        if obj["metadata"]["resourceVersion"] != resource_version:
            raise Conflict(f"{key} changed")
        obj["status"] = copy.deepcopy(status)
        self.ever_recorded |= status_digests(status)
        self.writes += 1
        self._bump(obj)
        if fault == "lose":
            raise OSError("connection reset after the write landed")
        return copy.deepcopy(obj)


class SimChain(FakeGateway):
    """FakeGateway with Sui's lock rule, in-flight transactions, lagging lookups."""

    def __init__(self) -> None:
        super().__init__()
        self.inflight: dict[str, SignedTransaction] = {}
        self.locks: dict[tuple[str, int], str] = {}  # (object, version) -> digest
        self.faults: deque[str] = deque()  # consumed by the next new execute
        self.lag: dict[str, int] = {}  # digest -> lookups that still miss it
        self.signed_on: dict[tuple[str, int], set[str]] = defaultdict(set)
        self.refused: set[str] = set()
        self.on_sign: list[Any] = []

    def refs_of(self, tx: SignedTransaction) -> list[ObjectRef]:
        return [tx.gas_coin, *_owned(self._call_of(tx))]

    async def build_and_sign(
        self, call: MoveCall, *, gas_coin: ObjectRef, gas_price: int, gas_budget: int
    ) -> SignedTransaction:
        await asyncio.sleep(0)
        tx = await super().build_and_sign(
            call, gas_coin=gas_coin, gas_price=gas_price, gas_budget=gas_budget
        )
        for hook in self.on_sign:
            hook(tx, self.refs_of(tx))
        for ref in self.refs_of(tx):
            self.signed_on[(ref.object_id, ref.version)].add(tx.digest)
        return tx

    async def simulate(self, tx: SignedTransaction) -> TxOutcome:
        await asyncio.sleep(0)
        return await super().simulate(tx)

    async def get_object_ref(self, object_id: str) -> ObjectRef | None:
        await asyncio.sleep(0)
        return await super().get_object_ref(object_id)

    async def get_transaction(self, digest: str) -> TxOutcome | None:
        await asyncio.sleep(0)
        self._enter("get_transaction")
        if self.lag.get(digest, 0) > 0:
            self.lag[digest] -= 1
            return None
        return self.transactions.get(digest)

    async def execute(self, tx: SignedTransaction) -> TxOutcome:
        await asyncio.sleep(0)
        self._enter("execute")
        self.sent.append(tx)
        self.executes[tx.digest] += 1
        if tx.digest in self.transactions:
            return self.transactions[tx.digest]
        if tx.digest in self.inflight:
            raise ChainUnavailable("timed-out before finality could be reached")
        refs = self.refs_of(tx)
        for ref in refs:
            if self.objects.get(ref.object_id) != ref:
                self.refused.add(tx.digest)
                raise TransactionRejected(
                    RejectionKind.STALE_OBJECT,
                    f"Object ID {ref.object_id} Version {ref.version} is not available "
                    "for consumption",
                )
        for ref in refs:
            holder = self.locks.get((ref.object_id, ref.version))
            if holder is not None and holder != tx.digest:
                self.refused.add(tx.digest)
                raise TransactionRejected(
                    RejectionKind.EQUIVOCATION,
                    f"Object {ref.object_id} already locked by a different transaction",
                )
        fault = self.faults.popleft() if self.faults else None
        if fault == "delay":
            self.inflight[tx.digest] = tx
            for ref in refs:
                self.locks[(ref.object_id, ref.version)] = tx.digest
            raise ChainUnavailable("timed-out before finality could be reached")
        outcome = self._run(tx)
        if fault == "lag":
            self.lag[tx.digest] = 2
        if fault == "lost":
            raise ChainUnavailable("the answer was lost")
        return outcome

    def _run(self, tx: SignedTransaction) -> TxOutcome:
        call = self._call_of(tx)
        effect = self._model_step(call)
        events = self._apply(call, effect, tx.digest) if isinstance(effect, Succeed) else ()
        for ref in _owned(call):
            self.bump(ref.object_id)
        outcome = self._outcome(
            tx, effect, events=events, gas_after=self.bump(tx.gas_coin.object_id)
        )
        self.balances[tx.gas_coin.object_id] -= 1
        self.transactions[tx.digest] = outcome
        for ref in self.refs_of(tx):
            if self.locks.get((ref.object_id, ref.version)) == tx.digest:
                del self.locks[(ref.object_id, ref.version)]
        return outcome

    def progress(self) -> None:
        """The node finishes (or drops) every transaction it still had in flight."""
        for digest, tx in list(self.inflight.items()):
            del self.inflight[digest]
            if all(self.objects.get(r.object_id) == r for r in self.refs_of(tx)):
                self._run(tx)
            else:
                self.refused.add(digest)
                for ref in self.refs_of(tx):
                    if self.locks.get((ref.object_id, ref.version)) == digest:
                        del self.locks[(ref.object_id, ref.version)]
