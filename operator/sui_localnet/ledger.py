"""The chain core: objects, owned-object locks, execution, gas, checkpoints, epochs.

One process, one "validator": a transaction is final the moment it is committed, and
each committed transaction gets its own checkpoint. What is modelled faithfully is
what a client can observe: digests known in advance, deduplication by digest, stale
object references refused, an owned object used by two different transactions
locked until the epoch ends (equivocation), gas charged even for aborts, and
simulation that changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import bcs
from .commands import CommandsMixin, Run
from .crypto import (
    SignatureError,
    b58encode,
    blake2b256,
    transaction_digest,
    verify_user_signature,
)
from .effects import (
    ChangedObj,
    CheckpointRecord,
    EventRecord,
    ExecError,
    ExecutedTx,
    GasSummary,
    UnchangedShared,
)
from .latency import SharedObjectLatency
from .objects import (
    CLOCK_ID,
    GENESIS_DIGEST,
    RANDOM_ID,
    SUI_COIN_TYPE,
    Contents,
    Owner,
    StoredObject,
    coin_value,
    derive_object_id,
)
from .runtime import (
    ExecutionFailure,
    MoveRuntime,
)
from .txdata import (
    MergeCoinsCmd,
    MoveCallCmd,
    ObjRef,
    OwnedInput,
    ReceivingInput,
    SharedInput,
    TransactionData,
    TransactionDecodeError,
    TransferObjectsCmd,
    UnsupportedCmd,
    decode_transaction,
)

DEFAULT_REFERENCE_GAS_PRICE = 1000
BASE_COMPUTATION_UNITS = 1000  # also the minimum budget, in units of the gas price
TX_BASE_UNITS = 200  # estimates, not measured on a real node (README: "Gas")
MOVE_CALL_UNITS = 1500  # an Atoma db call (Random, dynamic fields, events): the 5,000 bucket
OTHER_COMMAND_UNITS = 100  # split/merge/transfer: a plain coin transfer stays in 1,000
COMPUTATION_BUCKETS = (1_000, 5_000, 10_000, 20_000, 50_000, 200_000, 1_000_000, 5_000_000)
"""Sui charges computation by bucket: units are rounded up to the next of these
(sui-types gas_model/gas_v2.rs, computation_bucket; the last is max_bucket_cost)."""


def bucketize(units: int) -> int:
    """Computation units as Sui charges them: the smallest bucket that holds `units`."""
    return next((b for b in COMPUTATION_BUCKETS if units <= b), COMPUTATION_BUCKETS[-1])


MAX_TX_GAS = 50_000_000_000
MAX_GAS_PRICE = 100_000  # protocol max_gas_price (MIST)
INPUT_ERROR = "Error checking transaction input objects: "
"""Sui wraps UserInputError texts of the owned-input checks in this prefix."""
STORAGE_PRICE = 76
STORAGE_UNITS_PER_BYTE = 100
REBATE_PERCENT = 99
FRAMEWORK_PACKAGES = frozenset(bcs.normalize_address(a) for a in ("0x1", "0x2", "0x3"))


class Rejected(Exception):
    """Refused before execution: nothing ran, nothing was charged, nothing was recorded.

    `status` is the gRPC status name the service answers with.
    """

    def __init__(self, message: str, status: str = "INVALID_ARGUMENT") -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def storage_cost(obj: StoredObject) -> int:
    return len(obj.encode()) * STORAGE_UNITS_PER_BYTE * STORAGE_PRICE


@dataclass
class EpochRecord:
    epoch: int
    reference_gas_price: int
    start_ms: int
    first_checkpoint: int
    end_ms: int | None = None
    last_checkpoint: int | None = None


class Ledger(CommandsMixin):
    """The stand-in's whole chain state; every method runs on one asyncio loop."""

    def __init__(
        self,
        *,
        reference_gas_price: int = DEFAULT_REFERENCE_GAS_PRICE,
        chain_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self.chain_id = chain_id or b58encode(blake2b256(b"sui-localnet-genesis"))
        self.runtimes: dict[str, MoveRuntime] = {}
        self.objects: dict[str, StoredObject] = {}
        self.history: dict[tuple[str, int], StoredObject] = {}
        self.transactions: dict[str, ExecutedTx] = {}
        self.checkpoints: list[CheckpointRecord] = []
        self.events: list[EventRecord] = []
        self.epochs: list[EpochRecord] = []
        self.locks: dict[tuple[str, int], str] = {}
        self.shared_latency = SharedObjectLatency()
        """Consensus latency for transactions with shared inputs (off by default)."""
        self.strict_locks = False
        """False: current Sui (post-consensus locking): the loser of a race for an object
        version is refused with the lock-conflict error and the winner's new version is
        usable at once. True: the older rule, the object stays equivocated (refused) until
        the epoch ends."""
        self.equivocated: dict[str, tuple[int, str]] = {}  # id -> (epoch, first tx)
        self.execution_counts: Counter[str] = Counter()
        self.listeners: list[Callable[[], None]] = []
        self._pending: dict[str, asyncio.Future[ExecutedTx]] = {}
        self._admin_counter = 0
        self._genesis(reference_gas_price)

    # --- genesis and admin --------------------------------------------------------

    def _now_ms(self) -> int:
        now = int(self._clock() * 1000)
        if self.checkpoints:
            now = max(now, self.checkpoints[-1].timestamp_ms)
        return now

    def _genesis(self, reference_gas_price: int) -> None:
        now = self._now_ms()
        self.epochs.append(EpochRecord(0, reference_gas_price, now, 0))
        self.checkpoints.append(
            CheckpointRecord(0, b58encode(blake2b256(b"checkpoint-0")), 0, now, (), None)
        )
        for object_id, type_name, extra in (
            (RANDOM_ID, "0x2::random::Random", ()),
            (CLOCK_ID, "0x2::clock::Clock", (("timestamp_ms", bcs.U64(now)),)),
        ):
            value = bcs.Struct(type_name, (("id", bcs.Address(object_id)), *extra))
            self.put_object(StoredObject(object_id, 1, Owner.shared(1), type_name, value))

    @property
    def epoch(self) -> int:
        return self.epochs[-1].epoch

    @property
    def reference_gas_price(self) -> int:
        return self.epochs[-1].reference_gas_price

    def put_object(self, obj: StoredObject) -> StoredObject:
        self.objects[obj.object_id] = obj
        self.history[(obj.object_id, obj.version)] = obj
        return obj

    def new_object_id(self) -> str:
        """A fresh id for objects the admin surface creates outside any transaction."""
        self._admin_counter += 1
        return derive_object_id(self.chain_id, 1_000_000 + self._admin_counter)

    def create_object(
        self, *, owner: Owner, type_name: str, value: Contents, object_id: str | None = None
    ) -> StoredObject:
        oid = object_id or value_id(value) or self.new_object_id()
        obj = StoredObject(oid, 1, owner, type_name, value)
        obj = StoredObject(oid, 1, owner, type_name, value, storage_rebate=storage_cost(obj))
        self.put_object(obj)
        self._changed()
        return obj

    def mint_coin(self, owner: str, balance: int) -> StoredObject:
        oid = self.new_object_id()
        return self.create_object(
            owner=Owner.by(owner), type_name=SUI_COIN_TYPE, value=coin_value(oid, balance)
        )

    def update_object_value(self, object_id: str, value: Contents) -> None:
        """Admin edit of an object's contents (e.g. AtomaDb after an admin helper)."""
        obj = self.objects[object_id]
        self.put_object(
            obj.written(
                version=obj.version + 1,
                tx_digest=obj.previous_transaction,
                storage_rebate=obj.storage_rebate,
                value=value,
            )
        )
        self._changed()

    def advance_epoch(self, reference_gas_price: int | None = None) -> int:
        """End the epoch: equivocation locks clear, as on Sui."""
        now = self._now_ms()
        current = self.epochs[-1]
        current.end_ms = now
        current.last_checkpoint = self.checkpoints[-1].sequence_number
        self.epochs.append(
            EpochRecord(
                current.epoch + 1,
                reference_gas_price or current.reference_gas_price,
                now,
                current.last_checkpoint + 1,
            )
        )
        self.equivocated.clear()
        self.locks = {k: v for k, v in self.locks.items() if v in self._pending}
        self._changed()
        return self.epoch

    def owned_by(self, owner: str, type_filter: str | None = None) -> list[StoredObject]:
        owner = bcs.normalize_address(owner)
        out = [
            o
            for o in self.objects.values()
            if o.owner.kind == "address"
            and o.owner.address == owner
            and (type_filter is None or type_matches(o.type, type_filter))
        ]
        return sorted(out, key=lambda o: o.object_id)

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    # --- execution ----------------------------------------------------------------

    async def execute(
        self, tx_bytes: bytes, signatures: list[bytes], *, latency: float = 0.0
    ) -> ExecutedTx:
        """Validate, lock, execute and commit; idempotent per digest.

        The work runs in its own task so a client that disconnects mid-flight does not
        stop a transaction the network already accepted.
        """
        digest = transaction_digest(tx_bytes)
        if (done := self.transactions.get(digest)) is not None:
            return done
        if (pending := self._pending.get(digest)) is not None:
            return await asyncio.shield(pending)
        tx = self._decode(tx_bytes)
        self._verify_signatures(tx, tx_bytes, signatures)
        self._precheck(tx, for_execution=True)
        self._acquire_locks(tx, digest)
        task = asyncio.ensure_future(self._finish(tx, tx_bytes, digest, signatures, latency))
        self._pending[digest] = task
        return await asyncio.shield(task)

    async def _finish(
        self,
        tx: TransactionData,
        tx_bytes: bytes,
        digest: str,
        signatures: list[bytes],
        latency: float,
    ) -> ExecutedTx:
        try:
            if latency > 0:
                await asyncio.sleep(latency)  # injected network/consensus latency
            if any(isinstance(inp, SharedInput) for inp in tx.inputs):
                await self.shared_latency.wait()  # consensus ordering (the model's wait)
            result = self._run(tx, tx_bytes, digest, signatures, simulate=False)
            self._commit(result)
            return result
        except BaseException:
            for ref in tx.owned_refs():
                if self.locks.get((ref.object_id, ref.version)) == digest:
                    del self.locks[(ref.object_id, ref.version)]
            raise
        finally:
            self._pending.pop(digest, None)

    def simulate(self, tx_bytes: bytes) -> ExecutedTx:
        """Execute against current state and throw the result away; no signatures needed."""
        tx = self._decode(tx_bytes)
        self._precheck(tx, for_execution=False)
        return self._run(tx, tx_bytes, transaction_digest(tx_bytes), [], simulate=True)

    def is_pending(self, digest: str) -> bool:
        return digest in self._pending

    def _decode(self, tx_bytes: bytes) -> TransactionData:
        try:
            return decode_transaction(tx_bytes)
        except TransactionDecodeError as exc:
            raise Rejected(str(exc)) from None

    def _verify_signatures(
        self, tx: TransactionData, tx_bytes: bytes, signatures: list[bytes]
    ) -> None:
        required = {tx.sender, tx.gas_owner}
        if len(signatures) != len(required):
            raise Rejected(f"Expect {len(required)} signer signatures but got {len(signatures)}")
        signers: list[str] = []
        for sig in signatures:
            try:
                signers.append(verify_user_signature(sig, tx_bytes).address)
            except SignatureError as exc:
                raise Rejected(str(exc)) from None
        if len(set(signers)) != len(signers):
            raise Rejected("Invalid user signature: duplicate signature from one signer")
        for address in sorted(required):
            if address not in signers:
                raise Rejected(
                    f"Invalid user signature: Required Signature from {address} is absent "
                    f"{sorted(signers)}"
                )

    def _precheck(self, tx: TransactionData, *, for_execution: bool) -> None:
        epoch = self.epoch
        exp = tx.expiration
        if exp.kind == "Epoch" and exp.epoch is not None and epoch > exp.epoch:
            raise Rejected("Transaction Expired")
        if exp.kind == "ValidDuring" and (
            (exp.min_epoch is not None and epoch < exp.min_epoch)
            or (exp.max_epoch is not None and epoch > exp.max_epoch)
        ):
            raise Rejected("Transaction Expired")
        rgp = self.reference_gas_price
        if tx.gas_price >= MAX_GAS_PRICE:  # sui-types SuiGasStatus::new: `>=` max_gas_price
            raise Rejected(f"Gas price cannot exceed {MAX_GAS_PRICE} mist")
        if tx.gas_price < rgp:
            raise Rejected(f"Gas price {tx.gas_price} under reference gas price (RGP) {rgp}")
        min_budget = BASE_COMPUTATION_UNITS * tx.gas_price
        if tx.gas_budget < min_budget:
            raise Rejected(f"Gas budget: {tx.gas_budget} is lower than min: {min_budget}")
        if tx.gas_budget > MAX_TX_GAS:
            raise Rejected(f"Gas budget: {tx.gas_budget} is higher than max: {MAX_TX_GAS}")
        if not tx.gas_payment:
            raise Rejected("Missing gas payment")
        seen: set[str] = set()
        for ref in tx.owned_refs():
            if ref.object_id in seen:
                raise Rejected(
                    f"Mutable object {ref.object_id} cannot appear more than one in one transaction"
                )
            seen.add(ref.object_id)
        total = 0
        for ref in tx.gas_payment:
            coin = self._check_owned(ref, tx.gas_owner, for_execution=for_execution)
            if not coin.is_coin:
                raise Rejected(f"Gas object {ref.object_id} is not a SUI coin")
            total += coin.balance or 0
        if total < tx.gas_budget:
            raise Rejected(
                f"Balance of gas object {total} is lower than the needed amount: {tx.gas_budget}"
            )
        for inp in tx.inputs:
            if isinstance(inp, OwnedInput):
                self._check_owned(inp.ref, tx.sender, for_execution=for_execution)
            elif isinstance(inp, SharedInput):
                self._check_shared(inp)
            elif isinstance(inp, ReceivingInput):
                raise Rejected(
                    "Receiving arguments are not supported by the local stand-in", "UNIMPLEMENTED"
                )
        random_seen = False
        for cmd in tx.commands:
            if isinstance(cmd, UnsupportedCmd):
                raise Rejected(
                    f"The local Sui stand-in cannot execute {cmd.name} commands", "UNIMPLEMENTED"
                )
            if random_seen and not isinstance(cmd, TransferObjectsCmd | MergeCoinsCmd):
                raise Rejected(
                    "PostRandomCommandRestrictions: commands following a command with Random "
                    "can only be TransferObjects or MergeCoins"
                )
            if isinstance(cmd, MoveCallCmd):
                pkg = bcs.normalize_address(cmd.package)
                if pkg not in self.runtimes and pkg not in FRAMEWORK_PACKAGES:
                    raise Rejected(f"Dependent package not found on-chain: {pkg}")
                random_seen = random_seen or any(
                    a.kind == "Input"
                    and a.index < len(tx.inputs)
                    and isinstance(tx.inputs[a.index], SharedInput)
                    and tx.inputs[a.index].object_id == RANDOM_ID  # type: ignore[union-attr]
                    for a in cmd.arguments
                )

    def _check_owned(self, ref: ObjRef, owner: str, *, for_execution: bool) -> StoredObject:
        obj = self.objects.get(ref.object_id)
        if obj is None:
            raise Rejected(
                f"{INPUT_ERROR}Could not find the referenced object {ref.object_id} at "
                f"version {ref.version}"
            )
        if obj.owner.kind == "shared":
            raise Rejected(f"Object {ref.object_id} is shared and cannot be used as owned")
        if obj.owner.kind == "object":
            raise Rejected(
                f"Object {ref.object_id} is owned by object {obj.owner.address} and cannot be "
                "passed as a transaction input"
            )
        if obj.version != ref.version:
            raise Rejected(
                f"{INPUT_ERROR}Object ID {ref.object_id} Version {ref.version} Digest "
                f"{ref.digest} is not available for consumption, current version: {obj.version}"
            )
        if obj.digest != ref.digest:
            raise Rejected(
                f"{INPUT_ERROR}Invalid Object digest for object {ref.object_id}. Expected digest : "
                f"{obj.digest}, given digest : {ref.digest}"
            )
        if obj.owner.kind == "address" and obj.owner.address != owner:
            raise Rejected(
                "Transaction was not signed by the correct sender: Object "
                f"{ref.object_id} is owned by account address {obj.owner.address}, but given "
                f"owner/signer address is {owner}"
            )
        if for_execution and (eq := self.equivocated.get(ref.object_id)) is not None:
            raise Rejected(
                "Failed to sign transaction by a quorum of validators because one or more of "
                "its objects is equivocated until the next epoch. Other transactions locking "
                f"these objects:\n- {eq[1]} (object {ref.object_id}, epoch {eq[0]})",
                "FAILED_PRECONDITION",
            )
        return obj

    def _check_shared(self, inp: SharedInput) -> StoredObject:
        obj = self.objects.get(inp.object_id)
        if obj is None:
            raise Rejected(f"Could not find the referenced object {inp.object_id}")
        if obj.owner.kind != "shared":
            raise Rejected(f"Object {inp.object_id} is not a shared object")
        if obj.owner.initial_shared_version != inp.initial_shared_version:
            raise Rejected(
                f"SharedObjectStartingVersionMismatch: object {inp.object_id} was shared at "
                f"version {obj.owner.initial_shared_version}, not {inp.initial_shared_version}"
            )
        if inp.object_id in (RANDOM_ID, CLOCK_ID) and inp.mutable:
            raise Rejected(
                f"Mutable parameter provided, immutable parameter expected: {inp.object_id}"
            )
        return obj

    def _acquire_locks(self, tx: TransactionData, digest: str) -> None:
        refs = tx.owned_refs()
        for ref in refs:
            holder = self.locks.get((ref.object_id, ref.version))
            if holder is not None and holder != digest:
                if self.strict_locks:  # the older rule: equivocated until the epoch ends
                    self.equivocated[ref.object_id] = (self.epoch, holder)
                    self._changed()
                # sui-core transaction_driver: non-retriable ObjectLockConflict,
                # sui-rpc-api maps it to FAILED_PRECONDITION
                raise Rejected(
                    "Transaction is rejected as invalid by more than 1/3 of validators by "
                    "stake (non-retriable). Non-retriable errors: [Object "
                    f"({ref.object_id}, SequenceNumber({ref.version}), {ref.digest}) "
                    f"already locked by a different transaction: {holder}]",
                    "FAILED_PRECONDITION",
                )
        for ref in refs:
            self.locks[(ref.object_id, ref.version)] = digest

    # --- the executor ---------------------------------------------------------------

    def _run(
        self,
        tx: TransactionData,
        tx_bytes: bytes,
        digest: str,
        signatures: list[bytes],
        *,
        simulate: bool,
    ) -> ExecutedTx:
        inputs: dict[str, StoredObject] = {}
        mutable: list[str] = []
        readonly: list[str] = []
        for ref in tx.gas_payment:
            inputs[ref.object_id] = self.objects[ref.object_id]
            mutable.append(ref.object_id)
        for inp in tx.inputs:
            if isinstance(inp, OwnedInput):
                inputs[inp.ref.object_id] = self.objects[inp.ref.object_id]
                mutable.append(inp.ref.object_id)
            elif isinstance(inp, SharedInput):
                inputs[inp.object_id] = self.objects[inp.object_id]
                if inp.mutable and inp.object_id not in mutable:
                    mutable.append(inp.object_id)
                elif not inp.mutable and inp.object_id not in readonly:
                    readonly.append(inp.object_id)
        readonly = [r for r in readonly if r not in mutable]
        lamport = max(o.version for o in inputs.values()) + 1
        # One snapshot per runtime object (an upgraded package shares its runtime).
        snapshots = {pkg: rt.snapshot() for pkg, rt in self._distinct_runtimes().items()}

        run = Run(tx, digest, dict(inputs), dict(inputs), list(mutable))
        error: ExecError | None = None
        try:
            for index, cmd in enumerate(tx.commands):
                run.results.append(self._command(run, index, cmd))
            unused = [oid for oid in run.created if oid not in run.transferred]
            if unused:
                raise ExecutionFailure(
                    ExecError(
                        "UNUSED_VALUE_WITHOUT_DROP",
                        f"UnusedValueWithoutDrop {{ result_idx: {run.created[unused[0]]}, "
                        "secondary_idx: 0 }",
                        command=run.created[unused[0]],
                    )
                )
        except ExecutionFailure as failure:
            error = failure.error
            self._restore(snapshots)
            run = Run(tx, digest, dict(inputs), dict(inputs), list(mutable))

        computation = tx.gas_price * bucketize(
            TX_BASE_UNITS
            + sum(
                MOVE_CALL_UNITS if isinstance(c, MoveCallCmd) else OTHER_COMMAND_UNITS
                for c in tx.commands
            )
        )
        gas = self._gas(run, computation)
        # sui-types charge_storage_and_rebate: the storage cost net of the sender's rebate
        # must fit in what the budget leaves after computation
        if error is None and gas.storage_cost - gas.storage_rebate > max(
            0, tx.gas_budget - gas.computation_cost
        ):
            error = ExecError(
                "INSUFFICIENT_GAS", "InsufficientGas: gas budget exhausted", command=None
            )
            self._restore(snapshots)
            run = Run(tx, digest, dict(inputs), dict(inputs), list(mutable))
            gas = self._gas(run, computation)
        if gas.net > tx.gas_budget:
            over = gas.net - tx.gas_budget
            gas = GasSummary(
                max(0, gas.computation_cost - over),
                gas.storage_cost,
                gas.storage_rebate,
                gas.non_refundable_storage_fee,
            )
        if simulate:
            self._restore(snapshots)

        changed = self._write(run, lamport, gas)
        unchanged = [
            UnchangedShared(oid, inputs[oid].version, inputs[oid].digest, inputs[oid].type)
            for oid in readonly
        ]
        events = [
            EventRecord(pkg, module, tx.sender, f"{origin}::{module}::{name}", value, digest, seq)
            for seq, (pkg, origin, module, name, value) in enumerate(run.events)
        ]
        deps = sorted(
            ({o.previous_transaction for o in inputs.values()} - {GENESIS_DIGEST})
            & set(self.transactions)
        )
        return ExecutedTx(
            digest=digest,
            tx_bytes=tx_bytes,
            signatures=list(signatures),
            data=tx,
            error=error,
            gas=gas,
            changed=changed,
            gas_object_id=tx.gas_payment[0].object_id,
            unchanged_shared=unchanged,
            events=events,
            epoch=self.epoch,
            lamport_version=lamport,
            dependencies=deps,
        )

    def _distinct_runtimes(self) -> dict[str, MoveRuntime]:
        seen: dict[int, str] = {}
        for pkg, rt in self.runtimes.items():
            seen.setdefault(id(rt), pkg)
        return {pkg: self.runtimes[pkg] for pkg in seen.values()}

    def _restore(self, snapshots: dict[str, Any]) -> None:
        for pkg, snap in snapshots.items():
            self.runtimes[pkg].restore(snap)

    def _gas(self, run: Run, computation: int) -> GasSummary:
        written = [run.objects[o] for o in run.mutable if o not in run.deleted]
        written += [run.objects[o] for o in run.created]
        storage = sum(storage_cost(o) for o in written)
        rebate_total = sum(run.inputs[o].storage_rebate for o in run.mutable)
        rebate = rebate_total * REBATE_PERCENT // 100
        return GasSummary(computation, storage, rebate, rebate_total - rebate)

    def _write(self, run: Run, lamport: int, gas: GasSummary) -> list[ChangedObj]:
        inputs = run.inputs
        gas_ids = [r.object_id for r in run.tx.gas_payment]
        primary = gas_ids[0]
        gas_total = sum(run.objects[g].balance or 0 for g in gas_ids)
        for extra in gas_ids[1:]:
            run.deleted.add(extra)  # payment coins are merged into the first one
        coin = run.objects[primary]
        run.objects[primary] = StoredObject(
            coin.object_id,
            coin.version,
            coin.owner,
            coin.type,
            coin_value(primary, gas_total - gas.net),
            coin.previous_transaction,
            coin.storage_rebate,
        )
        changed: list[ChangedObj] = []
        for oid in run.mutable:
            if oid in run.deleted:
                changed.append(ChangedObj(oid, inputs[oid], None))
                continue
            out = run.objects[oid].written(version=lamport, tx_digest=run.digest, storage_rebate=0)
            out = out.written(
                version=lamport, tx_digest=run.digest, storage_rebate=storage_cost(out)
            )
            changed.append(ChangedObj(oid, inputs[oid], out))
        for oid in run.created:
            out = run.objects[oid].written(version=lamport, tx_digest=run.digest, storage_rebate=0)
            out = out.written(
                version=lamport, tx_digest=run.digest, storage_rebate=storage_cost(out)
            )
            changed.append(ChangedObj(oid, None, out))
        return changed

    # --- commit ---------------------------------------------------------------------

    def _commit(self, result: ExecutedTx) -> None:
        for change in result.changed:
            if change.output is None:
                self.objects.pop(change.object_id, None)
            else:
                self.put_object(change.output)
        for ref in result.data.owned_refs():
            self.locks.pop((ref.object_id, ref.version), None)
        previous = self.checkpoints[-1]
        seq = previous.sequence_number + 1
        now = self._now_ms()
        checkpoint = CheckpointRecord(
            seq,
            b58encode(blake2b256(f"checkpoint-{seq}-{result.digest}".encode())),
            self.epoch,
            now,
            (result.digest,),
            previous.digest,
        )
        self.checkpoints.append(checkpoint)
        result.checkpoint = seq
        result.timestamp_ms = now
        result.events = [
            EventRecord(
                e.package_id, e.module, e.sender, e.type, e.value, e.tx_digest, e.event_seq, seq, 0
            )
            for e in result.events
        ]
        self.events.extend(result.events)
        self.transactions[result.digest] = result
        self.execution_counts[result.digest] += 1
        self._changed()

    # --- snapshot -------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "objects": [o.dump() for o in self.objects.values()],
            "transactions": [t.dump() for t in self.transactions.values()],
            "checkpoints": [c.dump() for c in self.checkpoints],
            "epochs": [e.__dict__ for e in self.epochs],
            "equivocated": {k: list(v) for k, v in self.equivocated.items()},
            "execution_counts": dict(self.execution_counts),
            "admin_counter": self._admin_counter,
        }

    def load(self, data: dict[str, Any]) -> None:
        self.chain_id = data["chain_id"]
        self.objects = {}
        self.history = {}
        for o in data["objects"]:
            self.put_object(StoredObject.load(o))
        self.transactions = {}
        self.events = []
        for t in data["transactions"]:
            tx = ExecutedTx.load(t)
            self.transactions[tx.digest] = tx
            for change in tx.changed:
                if change.output is not None:
                    self.history[(change.object_id, change.output.version)] = change.output
        for tx in sorted(self.transactions.values(), key=lambda t: t.checkpoint or 0):
            self.events.extend(tx.events)
        self.checkpoints = [CheckpointRecord.load(c) for c in data["checkpoints"]]
        self.epochs = [EpochRecord(**e) for e in data["epochs"]]
        self.equivocated = {k: (int(v[0]), str(v[1])) for k, v in data["equivocated"].items()}
        self.execution_counts = Counter(data["execution_counts"])
        self._admin_counter = int(data["admin_counter"])
        self.locks = {}


def value_id(value: Contents) -> str | None:
    if isinstance(value, bcs.Raw):
        found = value.json.get("id") if isinstance(value.json, dict) else None
        return bcs.normalize_address(found) if isinstance(found, str) else None
    for name, v in value.fields:
        if name == "id" and isinstance(v, bcs.Address):
            return bcs.normalize_address(v.value)
    return None


def type_matches(type_name: str, pattern: str) -> bool:
    """Sui's type filter: `0x2::coin::Coin` matches any `Coin<T>`, a full type matches itself."""
    return _normalize_type(type_name) == _normalize_type(pattern) or (
        "<" not in pattern
        and _normalize_type(type_name).split("<", 1)[0] == _normalize_type(pattern)
    )


def _normalize_type(type_name: str) -> str:
    out = []
    for token in (
        type_name.replace(" ", "")
        .replace("<", " < ")
        .replace(">", " > ")
        .replace(",", " , ")
        .split()
    ):
        if "::" in token:
            addr, rest = token.split("::", 1)
            with contextlib.suppress(ValueError):
                addr = bcs.normalize_address(addr)
            token = f"{addr}::{rest}"
        out.append(token)
    return "".join(out)
