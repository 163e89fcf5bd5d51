"""Move calls of the Atoma `db` module, built with explicit, resolved arguments.

Argument order is the contract's (`ctx` is implicit). The builders check what the contract
would abort on for malformed input (32-byte proof and leaf, u64 range) so a bad input fails
here, for free, instead of on chain.
"""

from __future__ import annotations

from collections.abc import Sequence

from atoma_operator.sui.types import (
    MoveCall,
    ObjectRef,
    OwnedObjectArg,
    PureArg,
    SharedObjectArg,
)

from .hashing import HASH_LEN
from .movejson import U64_MAX, normalize_address

MODULE = "db"
RANDOM_OBJECT_ID = "0x" + "0" * 63 + "8"
"""Sui's shared `Random` object (0x8); its initial shared version differs per network."""

TRY_SETTLE_STACK = "try_settle_stack"
SUBMIT_ATTESTATION = "submit_stack_settlement_attestation"
CLAIM_FUNDS = "claim_funds"


def random_arg(initial_shared_version: int) -> SharedObjectArg:
    """The Random object argument: shared, passed immutably (`&Random`)."""
    return SharedObjectArg(RANDOM_OBJECT_ID, initial_shared_version, mutable=False)


def _u64(value: int, what: str) -> PureArg:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U64_MAX:
        raise ValueError(f"{what} must be a u64, got {value!r}")
    return PureArg("u64", value)


def _hash32(value: bytes, what: str) -> PureArg:
    if len(value) != HASH_LEN:
        raise ValueError(f"{what} must be 32 bytes, got {len(value)}")
    return PureArg("vector<u8>", bytes(value))


def _db(db: SharedObjectArg) -> SharedObjectArg:
    if not db.mutable:
        raise ValueError("AtomaDb must be passed mutably (&mut AtomaDb)")
    return db


def try_settle_stack(
    package: str,
    db: SharedObjectArg,
    badge: ObjectRef,
    stack_small_id: int,
    num_claimed_compute_units: int,
    committed_stack_proof: bytes,
    stack_merkle_leaf: bytes,
    random: SharedObjectArg,
) -> MoveCall:
    """`try_settle_stack(db, badge, stack, units, proof, leaf, &Random)`.

    A command using Random may only be followed by TransferObjects/MergeCoins, so this call
    must be alone in its transaction: one transaction per stack.
    """
    if normalize_address(random.object_id) != RANDOM_OBJECT_ID or random.mutable:
        raise ValueError("random must be the shared Random object 0x8, passed immutably")
    return MoveCall(
        package=package,
        module=MODULE,
        function=TRY_SETTLE_STACK,
        arguments=(
            _db(db),
            OwnedObjectArg(badge),
            _u64(stack_small_id, "stack_small_id"),
            _u64(num_claimed_compute_units, "num_claimed_compute_units"),
            _hash32(committed_stack_proof, "committed_stack_proof"),
            _hash32(stack_merkle_leaf, "stack_merkle_leaf"),
            random,
        ),
    )


def submit_stack_settlement_attestation(
    package: str,
    db: SharedObjectArg,
    badge: ObjectRef,
    stack_small_id: int,
    committed_stack_proof: bytes,
    stack_merkle_leaf: bytes,
) -> MoveCall:
    """`submit_stack_settlement_attestation(db, badge, stack, proof, leaf)`.

    The contract does not reject a second attestation by the same node (it counts it and
    may close the ticket early): check `already_attested_nodes` before building this.
    """
    return MoveCall(
        package=package,
        module=MODULE,
        function=SUBMIT_ATTESTATION,
        arguments=(
            _db(db),
            OwnedObjectArg(badge),
            _u64(stack_small_id, "stack_small_id"),
            _hash32(committed_stack_proof, "committed_stack_proof"),
            _hash32(stack_merkle_leaf, "stack_merkle_leaf"),
        ),
    )


def claim_funds(
    package: str,
    db: SharedObjectArg,
    badge: ObjectRef,
    settled_ticket_ids: Sequence[int],
) -> MoveCall:
    """`claim_funds(db, badge, settled_ticket_ids: vector<u64>)` (ids are stack small ids).

    One failing id aborts the whole transaction, and a repeated id always aborts (the first
    claim removes the ticket), so ids must be non-empty and unique.
    """
    ids = [_u64(i, "settled_ticket_ids[]").value for i in settled_ticket_ids]
    if not ids:
        raise ValueError("settled_ticket_ids must not be empty")
    if len(set(ids)) != len(ids):
        raise ValueError("settled_ticket_ids must be unique")
    return MoveCall(
        package=package,
        module=MODULE,
        function=CLAIM_FUNDS,
        arguments=(_db(db), OwnedObjectArg(badge), PureArg("vector<u64>", ids)),
    )
