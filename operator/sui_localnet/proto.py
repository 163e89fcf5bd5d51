"""Render ledger state as `sui.rpc.v2` messages (pysui's generated classes), with read masks.

Messages are built in full and then pruned to the request's read mask, the way Sui's
FieldMaskTree works ("*" selects everything below a path; an absent mask selects the
method's documented default paths).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable
from typing import Any, TypeVar

import betterproto2
from pysui.sui.sui_bcs import bcs as pbcs
from pysui.sui.sui_grpc.suimsgs.google import protobuf as gp
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as sp

from .effects import ChangedObj, CheckpointRecord, EventRecord, ExecError, ExecutedTx
from .objects import Owner, StoredObject

M = TypeVar("M", bound=betterproto2.Message)
MaskTree = dict[str, "MaskTree"]


ALL = "*"
"""Marks a mask node whose field was requested whole."""


def mask_tree(paths: Iterable[str]) -> MaskTree | None:
    """None means "everything"."""
    tree: MaskTree = {}
    for path in paths:
        if path in ("*", ""):
            return None
        node = tree
        for part in path.split("."):
            if part == "*" or ALL in node:  # a shorter path already asked for all of it
                break
            node = node.setdefault(part, {})
        else:
            # the path names this field whole: overlapping longer paths ("effects" with
            # "effects.status") must not narrow it, in either order
            node.clear()
            node[ALL] = {}
    return tree


def requested(read_mask: gp.FieldMask | None, default: list[str]) -> MaskTree | None:
    paths = list(read_mask.paths) if read_mask is not None and read_mask.paths else default
    return mask_tree(paths)


def prune(msg: M, tree: MaskTree | None) -> M:
    """Keep only the masked fields of `msg` (in place); an empty subtree keeps all below."""
    if tree is None or not tree or ALL in tree:
        return msg
    for f in dataclasses.fields(msg):  # type: ignore[arg-type]  # betterproto2 dataclasses
        if f.name not in tree:
            if f.default_factory is not dataclasses.MISSING:
                setattr(msg, f.name, f.default_factory())
            else:
                setattr(msg, f.name, None)
            continue
        sub = tree[f.name]
        if not sub or ALL in sub:
            continue
        value = getattr(msg, f.name)
        if isinstance(value, list):
            for item in value:
                if isinstance(item, betterproto2.Message):
                    prune(item, sub)
        elif isinstance(value, betterproto2.Message) and not isinstance(value, gp.Value):
            prune(value, sub)
    return msg


def timestamp(ms: int | None) -> datetime.datetime | None:
    if ms is None:
        return None
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)


def json_value(value: Any) -> gp.Value:
    return gp.Value.from_dict(value)


def owner_proto(owner: Owner) -> sp.Owner:
    if owner.kind == "address":
        return sp.Owner(kind=sp.OwnerOwnerKind.ADDRESS, address=owner.address)
    if owner.kind == "object":
        return sp.Owner(kind=sp.OwnerOwnerKind.OBJECT, address=owner.address)
    if owner.kind == "shared":
        return sp.Owner(kind=sp.OwnerOwnerKind.SHARED, version=owner.initial_shared_version)
    return sp.Owner(kind=sp.OwnerOwnerKind.IMMUTABLE)


def object_proto(obj: StoredObject) -> sp.Object:
    return sp.Object(
        bcs=sp.Bcs(name="Object", value=obj.encode()),
        object_id=obj.object_id,
        version=obj.version,
        digest=obj.digest,
        owner=owner_proto(obj.owner),
        object_type=obj.type,
        has_public_transfer=obj.has_public_transfer,
        contents=sp.Bcs(name=obj.type, value=obj.contents),
        previous_transaction=obj.previous_transaction,
        storage_rebate=obj.storage_rebate,
        json=json_value(obj.json),
        balance=obj.balance,
    )


def event_proto(event: EventRecord, *, standalone: bool) -> sp.Event:
    return sp.Event(
        package_id=event.package_id,
        module=event.module,
        sender=event.sender,
        event_type=event.type,
        contents=sp.Bcs(name=event.type, value=event.contents),
        json=json_value(event.json),
        checkpoint=event.checkpoint if standalone else None,
        transaction_digest=event.tx_digest,
        transaction_index=event.tx_index if standalone else None,
    )


def _changed_proto(c: ChangedObj) -> sp.ChangedObject:
    msg = sp.ChangedObject(
        object_id=c.object_id,
        id_operation=sp.ChangedObjectIdOperation[c.id_operation],
        object_type=_type_of(c),
    )
    if c.input is None:
        msg.input_state = sp.ChangedObjectInputObjectState.DOES_NOT_EXIST
    else:
        msg.input_state = sp.ChangedObjectInputObjectState.EXISTS
        msg.input_version = c.input.version
        msg.input_digest = c.input.digest
        msg.input_owner = owner_proto(c.input.owner)
    if c.output is None:
        msg.output_state = sp.ChangedObjectOutputObjectState.DOES_NOT_EXIST
    else:
        msg.output_state = sp.ChangedObjectOutputObjectState.OBJECT_WRITE
        msg.output_version = c.output.version
        msg.output_digest = c.output.digest
        msg.output_owner = owner_proto(c.output.owner)
    return msg


def _type_of(c: ChangedObj) -> str | None:
    obj = c.output or c.input
    return None if obj is None else obj.type


def _error_proto(error: ExecError) -> sp.ExecutionError:
    msg = sp.ExecutionError(
        description=error.description,
        command=error.command,
        kind=sp.ExecutionErrorExecutionErrorKind[error.kind],
    )
    if error.kind == "MOVE_ABORT":
        msg.abort = sp.MoveAbort(
            abort_code=error.abort_code,
            location=sp.MoveLocation(
                package=error.abort_package,
                module=error.abort_module,
                function=error.abort_function_index,
                instruction=0,
                function_name=error.abort_function,
            ),
        )
    elif error.argument_error is not None:
        msg.command_argument_error = sp.CommandArgumentError(
            argument=error.argument_index,
            kind=sp.CommandArgumentErrorCommandArgumentErrorKind[error.argument_error],
        )
    return msg


def transaction_proto(tx: ExecutedTx) -> sp.Transaction:
    data = pbcs.TransactionData.deserialize(tx.tx_bytes).value
    ptb = data.TransactionKind.value
    inputs: list[sp.Input] = []
    for inp in ptb.Inputs:
        if inp.enum_name == "Pure":
            inputs.append(sp.Input(kind=sp.InputInputKind.PURE, pure=bytes(inp.value)))
        else:
            inputs.append(inp.value.value.to_grpc_input(inp.value.enum_name))
    d = tx.data
    expiration = None
    if d.expiration.kind == "Epoch":
        expiration = sp.TransactionExpiration(
            kind=sp.TransactionExpirationTransactionExpirationKind.EPOCH, epoch=d.expiration.epoch
        )
    return sp.Transaction(
        bcs=sp.Bcs(name="TransactionData", value=tx.tx_bytes),
        digest=tx.digest,
        version=1,
        kind=sp.TransactionKind(
            kind=sp.TransactionKindKind.PROGRAMMABLE_TRANSACTION,
            programmable_transaction=sp.ProgrammableTransaction(
                inputs=inputs, commands=[c.value.to_grpc_command() for c in ptb.Command]
            ),
        ),
        sender=d.sender,
        gas_payment=sp.GasPayment(
            objects=[
                sp.ObjectReference(object_id=r.object_id, version=r.version, digest=r.digest)
                for r in d.gas_payment
            ],
            owner=d.gas_owner,
            price=d.gas_price,
            budget=d.gas_budget,
        ),
        expiration=expiration,
    )


def _balance_changes(tx: ExecutedTx) -> list[sp.BalanceChange]:
    deltas: dict[tuple[str, str], int] = {}
    for c in tx.changed:
        for obj, sign in ((c.input, -1), (c.output, 1)):
            if obj is not None and obj.is_coin and obj.owner.address:
                key = (obj.owner.address, "0x2::sui::SUI")
                deltas[key] = deltas.get(key, 0) + sign * (obj.balance or 0)
    return [
        sp.BalanceChange(address=a, coin_type=t, amount=str(v))
        for (a, t), v in sorted(deltas.items())
        if v
    ]


def executed_proto(tx: ExecutedTx) -> sp.ExecutedTransaction:
    gas_change = tx.gas_object
    effects = sp.TransactionEffects(
        digest=tx.effects_digest,
        version=2,
        status=sp.ExecutionStatus(
            success=tx.success, error=None if tx.error is None else _error_proto(tx.error)
        ),
        epoch=tx.epoch,
        gas_used=sp.GasCostSummary(
            computation_cost=tx.gas.computation_cost,
            storage_cost=tx.gas.storage_cost,
            storage_rebate=tx.gas.storage_rebate,
            non_refundable_storage_fee=tx.gas.non_refundable_storage_fee,
        ),
        transaction_digest=tx.digest,
        gas_object=None if gas_change is None else _changed_proto(gas_change),
        events_digest=tx.events_digest,
        dependencies=list(tx.dependencies),
        lamport_version=tx.lamport_version,
        changed_objects=[_changed_proto(c) for c in tx.changed],
        unchanged_consensus_objects=[
            sp.UnchangedConsensusObject(
                kind=sp.UnchangedConsensusObjectUnchangedConsensusObjectKind.READ_ONLY_ROOT,
                object_id=u.object_id,
                version=u.version,
                digest=u.digest,
                object_type=u.type,
            )
            for u in tx.unchanged_shared
        ],
    )
    objects = [object_proto(c.input) for c in tx.changed if c.input is not None]
    objects += [object_proto(c.output) for c in tx.changed if c.output is not None]
    return sp.ExecutedTransaction(
        digest=tx.digest,
        transaction=transaction_proto(tx),
        signatures=[
            sp.UserSignature(bcs=sp.Bcs(name="UserSignature", value=s)) for s in tx.signatures
        ],
        effects=effects,
        events=(
            sp.TransactionEvents(
                digest=tx.events_digest,
                events=[event_proto(e, standalone=False) for e in tx.events],
            )
            if tx.events
            else None
        ),
        checkpoint=tx.checkpoint,
        timestamp=timestamp(tx.timestamp_ms),
        balance_changes=_balance_changes(tx),
        objects=sp.ObjectSet(objects=objects),
        transaction_index=0 if tx.checkpoint is not None else None,
    )


def checkpoint_proto(cp: CheckpointRecord, txs: list[ExecutedTx], total_txs: int) -> sp.Checkpoint:
    return sp.Checkpoint(
        sequence_number=cp.sequence_number,
        digest=cp.digest,
        summary=sp.CheckpointSummary(
            digest=cp.digest,
            epoch=cp.epoch,
            sequence_number=cp.sequence_number,
            total_network_transactions=total_txs,
            previous_digest=cp.previous_digest,
            timestamp=timestamp(cp.timestamp_ms),
        ),
        contents=sp.CheckpointContents(
            digest=cp.digest,
            version=1,
            transactions=[
                sp.CheckpointedTransactionInfo(transaction=t.digest, effects=t.effects_digest)
                for t in txs
            ],
        ),
        transactions=[executed_proto(t) for t in txs],
    )
