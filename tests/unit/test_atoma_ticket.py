from __future__ import annotations

import base64
from typing import Any

import pytest

from atoma_operator.atoma.dbobject import AtomaDbParseError, parse_atoma_db
from atoma_operator.atoma.ticket import (
    AttestationStatus,
    SettlementTicket,
    TicketParseError,
    attestation_slot,
    attestation_status,
    attestation_window_open,
    has_attested,
    is_claimable,
    is_settled,
    parse_ticket,
    parse_ticket_field,
)

TICKET_ID = "0x" + "aa" * 32
PROOF = bytes(range(32))


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def ticket_json(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": TICKET_ID,
        "stack_small_id": {"inner": "5"},
        "selected_node_id": {"inner": "1"},
        "num_claimed_compute_units": "100",
        "requested_attestation_nodes": [{"inner": "2"}, {"inner": "3"}],
        "dispute_settled_at_epoch": "11",
        "committed_stack_proof": b64(PROOF),
        "stack_merkle_leaves_vector": b64(bytes(96)),
        "already_attested_nodes": [{"inner": "3"}],
        "is_in_dispute": False,
    }
    base.update(over)
    return base


def make(
    requested: list[int], attested: list[int], dispute: bool = False, epoch: int = 11
) -> SettlementTicket:
    return SettlementTicket(
        5, 1, 100, requested, PROOF, bytes(32 * (len(requested) + 1)), epoch, attested, dispute
    )


def test_parse_ticket() -> None:
    t = parse_ticket(ticket_json())
    assert t.stack_small_id == 5 and t.selected_node_id == 1
    assert t.num_claimed_compute_units == 100
    assert t.requested_attestation_nodes == [2, 3]
    assert t.already_attested_nodes == [3]
    assert t.dispute_settled_at_epoch == 11
    assert t.committed_stack_proof == PROOF
    assert t.num_slots == 3 and t.leaf_at(2) == bytes(32)
    assert t.object_id == TICKET_ID
    assert (t.received_attestations, t.required_attestations) == (1, 2)
    assert not t.is_claimed and parse_ticket(ticket_json(), is_claimed=True).is_claimed


@pytest.mark.parametrize(
    "over",
    [
        {"is_in_dispute": "false"},
        {"num_claimed_compute_units": "1e3"},
        {"stack_merkle_leaves_vector": b64(bytes(33))},
        {"stack_merkle_leaves_vector": b64(b"")},
        {"requested_attestation_nodes": None},
        {"id": 5},
    ],
)
def test_parse_ticket_rejects_malformed(over: dict[str, Any]) -> None:
    with pytest.raises(TicketParseError):
        parse_ticket(ticket_json(**over))


def test_parse_ticket_missing_field() -> None:
    data = ticket_json()
    del data["already_attested_nodes"]
    with pytest.raises(TicketParseError, match="already_attested_nodes"):
        parse_ticket(data)


def test_parse_ticket_field() -> None:
    stack, tid = parse_ticket_field(
        {"id": "0x1", "name": {"name": {"inner": "5"}}, "value": "0xaa"}
    )
    assert (stack, tid) == (5, "0x" + "0" * 62 + "aa")
    with pytest.raises(TicketParseError):
        parse_ticket_field({"name": {"inner": "5"}, "value": "0xaa"})


def test_slot_is_first_position_plus_one_even_when_sampled_twice() -> None:
    t = make([4, 2, 4], [])
    assert attestation_slot(t, 4) == 1
    assert attestation_slot(t, 2) == 2
    assert attestation_slot(t, 9) is None


def test_attestation_status() -> None:
    assert attestation_status(make([2, 3], [3])) is AttestationStatus.PENDING
    assert attestation_status(make([2, 3], [3, 2])) is AttestationStatus.COMPLETE
    assert attestation_status(make([], [])) is AttestationStatus.COMPLETE
    assert attestation_status(make([2], [], dispute=True)) is AttestationStatus.FAILED
    assert attestation_status(make([2], [2], dispute=True)) is AttestationStatus.FAILED


def test_settled_and_claimable_follow_epochs() -> None:
    done = make([2], [2], epoch=11)
    assert not is_settled(done, 10) and is_settled(done, 11) and is_settled(done, 12)
    assert not is_settled(make([2], [], epoch=11), 12)  # attestation missing
    assert not is_settled(make([2], [2], dispute=True), 20)
    assert is_claimable(make([2], [], epoch=11), 11)  # the contract does not wait for attesters
    assert not is_claimable(make([2], [], epoch=11), 10)
    assert not is_claimable(make([2], [2], dispute=True), 20)
    assert attestation_window_open(done, 11) and not attestation_window_open(done, 12)
    assert has_attested(done, 2) and not has_attested(done, 3)


def test_parse_atoma_db() -> None:
    info = parse_atoma_db(
        {
            "id": "0x1",
            "stacks": {"id": "0x2", "size": "0"},
            "stack_settlement_tickets": {"id": "0x3", "size": "4"},
            "cross_validation_probability_permille": "10",
            "cross_validation_extra_nodes_count": "1",
        }
    )
    assert info.tickets_table_id == "0x" + "0" * 63 + "3"
    assert info.cross_validation_extra_nodes_count == 1
    with pytest.raises(AtomaDbParseError):
        parse_atoma_db({"id": "0x1"})
