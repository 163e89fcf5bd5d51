from __future__ import annotations

import pytest

from atoma_operator.atoma import calls
from atoma_operator.sui.types import ObjectRef, OwnedObjectArg, PureArg, SharedObjectArg

PKG = "0x" + "ab" * 32
DB = SharedObjectArg("0x" + "01" * 32, 7, mutable=True)
BADGE = ObjectRef("0x" + "02" * 32, 3, "digest")
RANDOM = calls.random_arg(99)
P, L = bytes(range(32)), bytes(range(1, 33))


def test_random_arg_is_shared_0x8_immutable() -> None:
    assert RANDOM.object_id == "0x" + "0" * 63 + "8"
    assert RANDOM.initial_shared_version == 99 and not RANDOM.mutable


def test_try_settle_stack_argument_order() -> None:
    call = calls.try_settle_stack(PKG, DB, BADGE, 5, 100, P, L, RANDOM)
    assert call.target == f"{PKG}::db::try_settle_stack"
    assert call.arguments == (
        DB,
        OwnedObjectArg(BADGE),
        PureArg("u64", 5),
        PureArg("u64", 100),
        PureArg("vector<u8>", P),
        PureArg("vector<u8>", L),
        RANDOM,
    )


def test_try_settle_stack_rejects_wrong_random_and_lengths() -> None:
    with pytest.raises(ValueError, match="Random"):
        calls.try_settle_stack(
            PKG, DB, BADGE, 5, 1, P, L, SharedObjectArg(RANDOM.object_id, 1, True)
        )
    with pytest.raises(ValueError, match="Random"):
        calls.try_settle_stack(PKG, DB, BADGE, 5, 1, P, L, SharedObjectArg("0x6", 1, False))
    with pytest.raises(ValueError, match="committed_stack_proof"):
        calls.try_settle_stack(PKG, DB, BADGE, 5, 1, P[:31], L, RANDOM)
    with pytest.raises(ValueError, match="u64"):
        calls.try_settle_stack(PKG, DB, BADGE, 2**64, 1, P, L, RANDOM)
    with pytest.raises(ValueError, match="mutably"):
        calls.try_settle_stack(
            PKG, SharedObjectArg(DB.object_id, 7, False), BADGE, 5, 1, P, L, RANDOM
        )


def test_submit_attestation_argument_order() -> None:
    call = calls.submit_stack_settlement_attestation(PKG, DB, BADGE, 5, P, L)
    assert call.function == "submit_stack_settlement_attestation" and call.module == "db"
    assert call.arguments == (
        DB,
        OwnedObjectArg(BADGE),
        PureArg("u64", 5),
        PureArg("vector<u8>", P),
        PureArg("vector<u8>", L),
    )
    with pytest.raises(ValueError, match="stack_merkle_leaf"):
        calls.submit_stack_settlement_attestation(PKG, DB, BADGE, 5, P, b"")


def test_claim_funds() -> None:
    call = calls.claim_funds(PKG, DB, BADGE, [3, 1])
    assert call.arguments == (DB, OwnedObjectArg(BADGE), PureArg("vector<u64>", [3, 1]))
    with pytest.raises(ValueError, match="unique"):
        calls.claim_funds(PKG, DB, BADGE, [3, 3])
    with pytest.raises(ValueError, match="empty"):
        calls.claim_funds(PKG, DB, BADGE, [])
    with pytest.raises(ValueError, match="u64"):
        calls.claim_funds(PKG, DB, BADGE, [-1])
