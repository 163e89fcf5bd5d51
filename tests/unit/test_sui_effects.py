"""Effects mapping, refusal classification and endpoint parsing, without a server."""

from __future__ import annotations

import pytest
from pysui.sui.sui_grpc.suimsgs.google.protobuf import Struct, Value
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as pb

from atoma_operator.sui.effects import outcome_from_executed
from atoma_operator.sui.errors import ChainError, RejectionKind, classify_rejection
from atoma_operator.sui.gateway import parse_endpoint
from atoma_operator.sui.txbuild import normalize_id
from atoma_operator.sui.types import ExecutionStatus, ObjectRef

GAS_ID = normalize_id("0x9a5")
PKG = normalize_id("0xa70a")


def executed(
    status: pb.ExecutionStatus,
    *,
    gas_object: pb.ChangedObject | None = None,
    changed: list[pb.ChangedObject] | None = None,
    events: list[pb.Event] | None = None,
) -> pb.ExecutedTransaction:
    return pb.ExecutedTransaction(
        digest="TXDIGEST",
        effects=pb.TransactionEffects(
            status=status,
            epoch=3,
            gas_used=pb.GasCostSummary(
                computation_cost=1_000_000, storage_cost=500_000, storage_rebate=400_000
            ),
            gas_object=gas_object,
            changed_objects=changed or [],
        ),
        events=pb.TransactionEvents(events=events or []),
        checkpoint=42,
    )


def changed(object_id: str, version: int, digest: str) -> pb.ChangedObject:
    return pb.ChangedObject(object_id=object_id, output_version=version, output_digest=digest)


def test_success_with_gas_and_events() -> None:
    event = pb.Event(
        event_type=f"{PKG}::db::StackTrySettleEvent",
        json=Value(
            struct_value=Struct(
                fields={"stack_small_id": Value(string_value="5"), "ok": Value(bool_value=True)}
            )
        ),
    )
    out = outcome_from_executed(
        executed(
            pb.ExecutionStatus(success=True),
            gas_object=changed(GAS_ID, 34, "D34"),
            events=[event, event],
        ),
        digest="TXDIGEST",
    )
    assert out.status is ExecutionStatus.SUCCESS and out.succeeded
    assert out.gas_used_mist == 1_100_000  # computation + storage - rebate
    assert out.gas_coin_after == ObjectRef(GAS_ID, 34, "D34")
    assert (out.checkpoint, out.epoch) == (42, 3)
    assert [e.event_seq for e in out.events] == [0, 1]
    assert out.events[0].fields == {"stack_small_id": "5", "ok": True}
    assert out.events[0].name == "StackTrySettleEvent"
    assert out.events[0].tx_digest == "TXDIGEST"


def test_move_abort_has_code_and_module() -> None:
    status = pb.ExecutionStatus(
        success=False,
        error=pb.ExecutionError(
            description="MoveAbort in db::try_settle_stack",
            kind=pb.ExecutionErrorExecutionErrorKind.MOVE_ABORT,
            abort=pb.MoveAbort(
                abort_code=312012024, location=pb.MoveLocation(package="0xa70a", module="db")
            ),
        ),
    )
    out = outcome_from_executed(
        executed(status, changed=[changed(GAS_ID, 34, "D34")]), digest="X", gas_coin_id="0x9a5"
    )
    assert out.status is ExecutionStatus.MOVE_ABORT and not out.succeeded
    assert out.abort_code == 312012024
    assert out.abort_module == f"{PKG}::db"
    assert out.gas_coin_after == ObjectRef(GAS_ID, 34, "D34")  # found among changed objects
    assert out.gas_used_mist > 0  # an abort still pays


def test_other_failure_keeps_its_text() -> None:
    status = pb.ExecutionStatus(
        success=False,
        error=pb.ExecutionError(
            description="out of gas", kind=pb.ExecutionErrorExecutionErrorKind.INSUFFICIENT_GAS
        ),
    )
    out = outcome_from_executed(executed(status), digest="X")
    assert out.status is ExecutionStatus.FAILURE
    assert out.abort_code is None
    assert out.error == "INSUFFICIENT_GAS: out of gas"
    assert out.gas_coin_after is None


def test_missing_effects_is_an_error() -> None:
    with pytest.raises(ChainError):
        outcome_from_executed(pb.ExecutedTransaction(digest="X"), digest="X")


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        # sui-network.md's table: the code decides, the message only among shared codes
        (
            "FAILED_PRECONDITION",
            "Transaction is rejected as invalid by more than 1/3 of validators by stake "
            "(non-retriable). Non-retriable errors: [Object (0xab, SequenceNumber(3), D) "
            "already locked by a different transaction: T]",
            RejectionKind.LOCK_CONFLICT,
        ),
        ("FAILED_PRECONDITION", "anything at all", RejectionKind.LOCK_CONFLICT),
        (
            "FAILED_PRECONDITION",
            "Failed to sign transaction by a quorum of validators because one or more of its "
            "objects is equivocated until the next epoch.",
            RejectionKind.LOCK_CONFLICT,
        ),
        (
            "INVALID_ARGUMENT",
            "Invalid user signature: Required Signature from 0x1 is absent",
            RejectionKind.SIGNATURE,
        ),
        ("INVALID_ARGUMENT", "Expect 2 signer signatures but got 1", RejectionKind.SIGNATURE),
        (
            "INVALID_ARGUMENT",
            "Error checking transaction input objects: Object ID 0xab Version 3 Digest D is "
            "not available for consumption, current version: 4",
            RejectionKind.STALE_VERSION,
        ),
        (
            "INVALID_ARGUMENT",
            "Error checking transaction input objects: Invalid Object digest for object 0xab.",
            RejectionKind.STALE_VERSION,
        ),
        (
            "INVALID_ARGUMENT",
            "Balance of gas object 10 is lower than the needed amount: 100",
            RejectionKind.GAS_BALANCE_TOO_LOW,
        ),
        (
            "INVALID_ARGUMENT",
            "Gas price 1 under reference gas price (RGP) 1000",
            RejectionKind.GAS_PRICE_TOO_LOW,
        ),
        (
            "INVALID_ARGUMENT",
            "Gas price cannot exceed 100000 mist",
            RejectionKind.GAS_PRICE_TOO_HIGH,
        ),
        (
            "INVALID_ARGUMENT",
            "Gas budget: 1 is lower than min: 1000",
            RejectionKind.GAS_BUDGET_TOO_LOW,
        ),
        (
            "INVALID_ARGUMENT",
            "Gas budget: 60000000000 is higher than max: 50000000000",
            RejectionKind.GAS_BUDGET_TOO_HIGH,
        ),
        (
            "INVALID_ARGUMENT",
            "Could not find the referenced object 0xab at version 3",
            RejectionKind.OBJECT_NOT_FOUND,
        ),
        ("NOT_FOUND", "whatever", RejectionKind.OBJECT_NOT_FOUND),
        ("INVALID_ARGUMENT", "Transaction Expired", RejectionKind.INVALID),
        (None, "", RejectionKind.OTHER),
    ],
)
def test_refusals_are_classified(code: str | None, message: str, kind: RejectionKind) -> None:
    assert classify_rejection(message, code) is kind


def test_only_budget_and_price_limits_are_never_accepted() -> None:
    from atoma_operator.sui.errors import TransactionRejected

    never = {k for k in RejectionKind if TransactionRejected(k, "").retry_cannot_fix}
    assert never == {
        RejectionKind.GAS_BUDGET_TOO_LOW,
        RejectionKind.GAS_BUDGET_TOO_HIGH,
        RejectionKind.GAS_PRICE_TOO_HIGH,
    }
    assert RejectionKind.EQUIVOCATION is RejectionKind.LOCKED is RejectionKind.LOCK_CONFLICT


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:9000", ("127.0.0.1", 9000, False)),
        ("https://fullnode.mainnet.sui.io:443", ("fullnode.mainnet.sui.io", 443, True)),
        ("https://fullnode.testnet.sui.io", ("fullnode.testnet.sui.io", 443, True)),
        ("http://localnet.atoma.svc:9000/", ("localnet.atoma.svc", 9000, False)),
    ],
)
def test_endpoints(url: str, expected: tuple[str, int, bool]) -> None:
    assert parse_endpoint(url) == expected


@pytest.mark.parametrize("url", ["127.0.0.1:9000", "http://host", "grpc://h:1", "http://h:x"])
def test_bad_endpoints(url: str) -> None:
    with pytest.raises(ValueError):
        parse_endpoint(url)
