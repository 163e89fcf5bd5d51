"""Offline transaction building: the BCS decodes back, the digest is Sui's, pure values are BCS."""

from __future__ import annotations

import base64
import hashlib

import canoser
import pytest
from pysui.sui.sui_common.txn_base import _SuiTransactionBase

from atoma_operator.sui.txbuild import (
    build_transaction_data,
    decode_transaction_data,
    encode_pure,
    gas_payment,
    normalize_id,
    transaction_digest,
)
from atoma_operator.sui.types import MoveCall, ObjectRef, OwnedObjectArg, PureArg, SharedObjectArg
from sui_localnet.txdata import MoveCallCmd, OwnedInput, PureInput, SharedInput, decode_transaction

PKG = normalize_id("0xa70a")
DB = normalize_id("0xdb")
SENDER = normalize_id("0x5e4d")
BADGE = ObjectRef(normalize_id("0xbad9e"), 12, "4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi")
GAS = ObjectRef(normalize_id("0x9a5"), 33, "8qbHbw2BbbTHBW1sbeqakYXVKRQM8Ne7pLK7m6CVfeR")
PROOF = hashlib.blake2b(b"proof", digest_size=32).digest()


def settle_call(stack: int = 5) -> MoveCall:
    return MoveCall(
        package=PKG,
        module="db",
        function="try_settle_stack",
        arguments=(
            SharedObjectArg(DB, 7, True),
            OwnedObjectArg(BADGE),
            PureArg("u64", stack),
            PureArg("u64", 100),
            PureArg("vector<u8>", PROOF),
            PureArg("vector<u8>", PROOF),
            SharedObjectArg("0x8", 1, False),
        ),
    )


def build(call: MoveCall | None = None, **kw: int) -> bytes:
    return build_transaction_data(
        sender=SENDER,
        call=call or settle_call(),
        gas_coin=GAS,
        gas_price=kw.get("price", 1_000),
        gas_budget=kw.get("budget", 50_000_000),
    )


def test_digest_is_suis_formula_and_matches_pysui() -> None:
    tx = build()
    b64 = base64.b64encode(tx).decode()
    assert transaction_digest(tx) == _SuiTransactionBase.digest_from_b64str(b64)
    assert transaction_digest(tx) != transaction_digest(build(settle_call(6)))
    assert transaction_digest(tx) == transaction_digest(build())  # deterministic


def test_bcs_decodes_back_to_the_call() -> None:
    tx = decode_transaction(build())  # the stand-in's decoder, not ours
    assert tx.sender == SENDER and tx.gas_owner == SENDER
    assert (tx.gas_price, tx.gas_budget) == (1_000, 50_000_000)
    assert tx.expiration.kind == "None"
    (payment,) = tx.gas_payment
    assert (payment.object_id, payment.version, payment.digest) == (
        GAS.object_id,
        GAS.version,
        GAS.digest,
    )
    (command,) = tx.commands
    assert isinstance(command, MoveCallCmd)
    assert (command.package, command.module, command.function) == (PKG, "db", "try_settle_stack")
    assert [a.index for a in command.arguments] == list(range(7))
    db, badge, stack, units, proof, leaf, rnd = tx.inputs
    assert isinstance(db, SharedInput) and (db.object_id, db.initial_shared_version) == (DB, 7)
    assert db.mutable
    assert isinstance(badge, OwnedInput) and badge.ref.version == 12
    assert isinstance(stack, PureInput) and stack.value == (5).to_bytes(8, "little")
    assert isinstance(units, PureInput) and units.value == (100).to_bytes(8, "little")
    assert isinstance(proof, PureInput) and proof.value == bytes([32]) + PROOF
    assert isinstance(leaf, PureInput)
    assert isinstance(rnd, SharedInput) and not rnd.mutable
    assert rnd.object_id == normalize_id("0x8")


def test_recorded_bytes_tell_their_gas_coin() -> None:
    b64 = base64.b64encode(build()).decode()
    assert tuple(gas_payment(b64)) == (GAS,)
    assert decode_transaction_data(b64).value.GasData.Budget == 50_000_000


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        (PureArg("u8", 7), canoser.Uint8.encode(7)),
        (PureArg("u64", 2**64 - 1), canoser.Uint64.encode(2**64 - 1)),
        (PureArg("bool", True), canoser.BoolT.encode(True)),
        (PureArg("vector<u8>", b"\x01\x02"), canoser.ArrayT(canoser.Uint8).encode([1, 2])),
        (PureArg("vector<u8>", [0] * 200), canoser.ArrayT(canoser.Uint8).encode([0] * 200)),
        (PureArg("vector<u64>", [1, 2**40]), canoser.ArrayT(canoser.Uint64).encode([1, 2**40])),
        (PureArg("address", "0x2"), bytes(31) + b"\x02"),
    ],
)
def test_pure_values_are_bcs(arg: PureArg, expected: bytes) -> None:
    assert encode_pure(arg) == expected


@pytest.mark.parametrize(
    "arg",
    [
        PureArg("u8", 256),
        PureArg("u64", -1),
        PureArg("u64", 2**64),
        PureArg("u64", True),
        PureArg("bool", 1),
        PureArg("vector<u8>", [256]),
        PureArg("address", "0xZZ"),
    ],
)
def test_bad_pure_values_are_refused(arg: PureArg) -> None:
    with pytest.raises(ValueError):
        encode_pure(arg)


def test_an_object_passed_twice_is_one_input() -> None:
    call = MoveCall(
        PKG,
        "db",
        "f",
        (SharedObjectArg(DB, 7, False), SharedObjectArg(DB, 7, True), PureArg("u8", 1)),
    )
    tx = decode_transaction(build(call))
    assert len(tx.inputs) == 2
    assert isinstance(tx.inputs[0], SharedInput) and tx.inputs[0].mutable  # widest access
    (command,) = tx.commands
    assert isinstance(command, MoveCallCmd)
    assert [a.index for a in command.arguments] == [0, 0, 1]


def test_gas_coin_cannot_be_an_argument_and_gas_must_be_positive() -> None:
    call = MoveCall(PKG, "db", "f", (OwnedObjectArg(GAS),))
    with pytest.raises(ValueError, match="gas coin"):
        build(call)
    with pytest.raises(ValueError):
        build(price=0)


def test_type_arguments_are_encoded() -> None:
    call = MoveCall(PKG, "m", "f", (), type_arguments=("0x2::sui::SUI",))
    tx = decode_transaction(build(call))
    (command,) = tx.commands
    assert isinstance(command, MoveCallCmd)
    assert len(command.type_arguments) == 1
    assert command.type_arguments[0].endswith("::sui::SUI")
