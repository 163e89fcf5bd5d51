"""Mapping sui.rpc.v2 ExecutedTransaction messages to the operator's `TxOutcome`.

Kept apart from the gateway so it can be tested with hand-made messages: the status
(`effects.status.success`, not the RPC result, says whether the call worked), the abort
code and its module, what the sender paid, the gas coin's next reference and events.
"""

from __future__ import annotations

from collections.abc import Sequence

from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as pb

from atoma_operator.sui.errors import ChainError
from atoma_operator.sui.txbuild import normalize_id
from atoma_operator.sui.types import ChainEvent, ExecutionStatus, GasCost, ObjectRef, TxOutcome


def outcome_from_executed(
    executed: pb.ExecutedTransaction, *, digest: str, gas_coin_id: str | None = None
) -> TxOutcome:
    """TxOutcome of an executed or simulated transaction.

    `digest` is used when the node leaves the field out (simulations may); `gas_coin_id`
    finds the gas coin among the changed objects if `effects.gas_object` is missing.
    """
    effects = executed.effects
    if effects is None or effects.status is None:
        raise ChainError(f"transaction {digest}: the node returned no effects")
    tx_digest = executed.digest or effects.transaction_digest or digest
    status, abort_code, abort_module, error = _status(effects.status)
    checkpoint = int(executed.checkpoint) if executed.checkpoint is not None else None
    events = executed.events.events if executed.events is not None else []
    return TxOutcome(
        digest=tx_digest,
        status=status,
        abort_code=abort_code,
        abort_module=abort_module,
        error=error,
        gas_used_mist=_gas_used(effects.gas_used),
        gas_cost=_gas_cost(effects.gas_used),
        gas_coin_after=_gas_coin_after(effects, gas_coin_id),
        changed_refs=tuple(r for c in effects.changed_objects if (r := _output_ref(c))),
        events=chain_events(events, tx_digest, checkpoint),
        checkpoint=checkpoint,
        epoch=int(effects.epoch) if effects.epoch is not None else None,
    )


def _status(
    status: pb.ExecutionStatus,
) -> tuple[ExecutionStatus, int | None, str | None, str | None]:
    if status.success:
        return ExecutionStatus.SUCCESS, None, None, None
    err = status.error
    if err is None:
        return ExecutionStatus.FAILURE, None, None, "execution failed (no error detail)"
    kind = err.kind.name if err.kind is not None else "UNKNOWN"
    description = err.description or kind
    if err.abort is not None and err.abort.abort_code is not None:
        location = err.abort.location
        module: str | None = None
        if location is not None and location.module:
            module = (
                f"{normalize_id(location.package)}::{location.module}"
                if location.package
                else location.module
            )
        return ExecutionStatus.MOVE_ABORT, int(err.abort.abort_code), module, description
    return ExecutionStatus.FAILURE, None, None, f"{kind}: {description}"


def _gas_used(summary: pb.GasCostSummary | None) -> int:
    if summary is None:
        return 0
    return (
        int(summary.computation_cost or 0)
        + int(summary.storage_cost or 0)
        - int(summary.storage_rebate or 0)
    )


def _gas_cost(summary: pb.GasCostSummary | None) -> GasCost | None:
    if summary is None:
        return None
    return GasCost(
        int(summary.computation_cost or 0),
        int(summary.storage_cost or 0),
        int(summary.storage_rebate or 0),
    )


def _output_ref(changed: pb.ChangedObject) -> ObjectRef | None:
    if not changed.object_id or changed.output_version is None or not changed.output_digest:
        return None
    return ObjectRef(
        normalize_id(changed.object_id), int(changed.output_version), changed.output_digest
    )


def _gas_coin_after(effects: pb.TransactionEffects, gas_coin_id: str | None) -> ObjectRef | None:
    if effects.gas_object is not None and (ref := _output_ref(effects.gas_object)):
        return ref
    if gas_coin_id is None:
        return None
    wanted = normalize_id(gas_coin_id)
    for changed in effects.changed_objects:
        if changed.object_id and normalize_id(changed.object_id) == wanted:
            return _output_ref(changed)
    return None


def chain_events(
    events: Sequence[pb.Event], tx_digest: str, checkpoint: int | None
) -> tuple[ChainEvent, ...]:
    """Events carried inside a transaction (digest and index come from the transaction)."""
    return tuple(
        event_from_message(event, tx_digest=tx_digest, index=index, checkpoint=checkpoint)
        for index, event in enumerate(events)
    )


def event_from_message(
    event: pb.Event,
    *,
    tx_digest: str | None = None,
    index: int | None = None,
    checkpoint: int | None = None,
) -> ChainEvent:
    """A ChainEvent; the keyword values fill in what the message leaves out."""
    fields = event.json.to_dict() if event.json is not None else {}
    seq = event.event_index if event.event_index is not None else index
    cp = event.checkpoint if event.checkpoint is not None else checkpoint
    return ChainEvent(
        type=event.event_type or "",
        fields=fields if isinstance(fields, dict) else {"value": fields},
        tx_digest=event.transaction_digest or tx_digest or "",
        event_seq=int(seq or 0),
        checkpoint=int(cp) if cp is not None else None,
    )
