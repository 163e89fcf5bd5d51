from __future__ import annotations

import base64
from typing import Any

import pytest

from atoma_operator.atoma.events import (
    EVENT_NAMES,
    EventParseError,
    NewStackSettlementAttestationEvent,
    StackAttestationDisputeEvent,
    StackSettlementTicketClaimedEvent,
    StackSettlementTicketEvent,
    StackTrySettleEvent,
    event_type,
    parse_event,
)
from atoma_operator.sui.types import ChainEvent

PKG = "0x" + "ab" * 32
PROOF = bytes(range(32))
LEAF = bytes(range(32, 64))


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def ev(name: str, fields: dict[str, Any], pkg: str = PKG) -> ChainEvent:
    return ChainEvent(type=f"{pkg}::db::{name}", fields=fields, tx_digest="D1", event_seq=4)


def test_try_settle_event_with_u64_strings_and_small_id_structs() -> None:
    parsed = parse_event(
        ev(
            "StackTrySettleEvent",
            {
                "stack_small_id": {"inner": "18446744073709551615"},
                "selected_node_id": {"inner": "7"},
                "requested_attestation_nodes": [{"inner": "3"}, {"inner": "3"}],
                "committed_stack_proof": b64(PROOF),
                "stack_merkle_leaf": b64(LEAF),
                "num_claimed_compute_units": "1000",
            },
        )
    )
    assert parsed == StackTrySettleEvent("D1", 4, 2**64 - 1, 7, (3, 3), PROOF, LEAF, 1000)


def test_bare_u64_and_byte_lists_are_accepted() -> None:
    parsed = parse_event(
        ev(
            "NewStackSettlementAttestationEvent",
            {
                "stack_small_id": "5",
                "attestation_node_id": 9,
                "committed_stack_proof": list(PROOF),
                "stack_merkle_leaf": b64(LEAF),
            },
        )
    )
    assert parsed == NewStackSettlementAttestationEvent("D1", 4, 5, 9, PROOF, LEAF)


def test_ticket_dispute_and_claimed_events() -> None:
    t = parse_event(
        ev(
            "StackSettlementTicketEvent",
            {
                "stack_small_id": {"inner": "5"},
                "selected_node_id": {"inner": "1"},
                "num_claimed_compute_units": "10",
                "requested_attestation_nodes": [{"inner": "2"}],
                "dispute_settled_at_epoch": "12",
                "committed_stack_proof": b64(PROOF),
            },
        )
    )
    assert t == StackSettlementTicketEvent("D1", 4, 5, 1, 10, (2,), 12, PROOF)
    d = parse_event(
        ev(
            "StackAttestationDisputeEvent",
            {
                "stack_small_id": {"inner": "5"},
                "attestation_commitment": b64(LEAF),
                "attestation_node_id": {"inner": "2"},
                "original_node_id": {"inner": "1"},
                "original_commitment": b64(PROOF),
            },
        )
    )
    assert d == StackAttestationDisputeEvent("D1", 4, 5, LEAF, 2, 1, PROOF)
    c = parse_event(
        ev(
            "StackSettlementTicketClaimedEvent",
            {
                "stack_small_id": {"inner": "5"},
                "selected_node_id": {"inner": "1"},
                "attestation_nodes": [],
                "num_claimed_compute_units": "10",
                "user_refund_amount": "90",
            },
        )
    )
    assert c == StackSettlementTicketClaimedEvent("D1", 4, 5, 1, (), 10, 90)


def test_other_types_are_ignored() -> None:
    assert parse_event(ev("StackCreatedEvent", {})) is None
    assert parse_event(ChainEvent("0x2::coin::CoinEvent", {}, "D", 0)) is None
    assert parse_event(ChainEvent(f"{PKG}::settlement::StackTrySettleEvent", {}, "D", 0)) is None


def test_package_filter() -> None:
    fields = {
        "stack_small_id": "1",
        "attestation_node_id": "2",
        "committed_stack_proof": b64(PROOF),
        "stack_merkle_leaf": b64(LEAF),
    }
    other = "0x" + "cd" * 32
    assert parse_event(ev(EVENT_NAMES[1], fields, other), package_id=PKG) is None
    short = ev(EVENT_NAMES[1], fields, "0xab")
    assert parse_event(short, package_id="0x00ab") is not None
    assert event_type("0xab", "X").endswith("00ab::db::X")


@pytest.mark.parametrize(
    "fields",
    [
        {},  # everything missing
        {
            "stack_small_id": "1",
            "attestation_node_id": "2",
            "committed_stack_proof": "!!",
            "stack_merkle_leaf": b64(LEAF),
        },
        {
            "stack_small_id": "-1",
            "attestation_node_id": "2",
            "committed_stack_proof": b64(PROOF),
            "stack_merkle_leaf": b64(LEAF),
        },
        {
            "stack_small_id": "18446744073709551616",
            "attestation_node_id": "2",
            "committed_stack_proof": b64(PROOF),
            "stack_merkle_leaf": b64(LEAF),
        },
        {
            "stack_small_id": True,
            "attestation_node_id": "2",
            "committed_stack_proof": b64(PROOF),
            "stack_merkle_leaf": b64(LEAF),
        },
        {
            "stack_small_id": {"outer": "1"},
            "attestation_node_id": "2",
            "committed_stack_proof": b64(PROOF),
            "stack_merkle_leaf": b64(LEAF),
        },
        {
            "stack_small_id": "1",
            "attestation_node_id": "2",
            "committed_stack_proof": [256],
            "stack_merkle_leaf": b64(LEAF),
        },
    ],
)
def test_malformed_fields_raise_typed_error(fields: dict[str, Any]) -> None:
    with pytest.raises(EventParseError) as err:
        parse_event(ev("NewStackSettlementAttestationEvent", fields))
    assert "D1#4" in str(err.value)


def test_requested_nodes_must_be_a_list() -> None:
    with pytest.raises(EventParseError):
        parse_event(
            ev(
                "StackTrySettleEvent",
                {
                    "stack_small_id": "1",
                    "selected_node_id": "1",
                    "requested_attestation_nodes": "3",
                    "committed_stack_proof": b64(PROOF),
                    "stack_merkle_leaf": b64(LEAF),
                    "num_claimed_compute_units": "1",
                },
            )
        )
