"""The settlement ticket (`db::StackSettlementTicket`) and what the operator derives from it.

The on-chain ticket has no `is_claimed` field: `claim_funds` deletes the ticket (and the
stack). `is_claimed` here is therefore False for any ticket read from chain; the follower
sets it from `StackSettlementTicketClaimedEvent`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .hashing import HASH_LEN
from .movejson import (
    MoveJsonError,
    boolean,
    byte_vector,
    object_id,
    small_id,
    small_id_list,
    u64,
)
from .movejson import field as get


class TicketParseError(ValueError):
    """Ticket (or ticket field) JSON that does not have the contract's shape."""


class AttestationStatus(StrEnum):
    """The seed's `attestation_status`."""

    PENDING = "Pending"
    COMPLETE = "Complete"
    FAILED = "Failed"


@dataclass(frozen=True)
class SettlementTicket:
    stack_small_id: int
    selected_node_id: int
    num_claimed_compute_units: int
    requested_attestation_nodes: list[int]
    committed_stack_proof: bytes
    stack_merkle_leaves: bytes  # (extra nodes count + 1) * 32 bytes, slot 0 = selected node
    dispute_settled_at_epoch: int
    already_attested_nodes: list[int]
    is_in_dispute: bool
    is_claimed: bool = False
    object_id: str | None = field(default=None, compare=False)

    @property
    def received_attestations(self) -> int:
        return len(self.already_attested_nodes)

    @property
    def required_attestations(self) -> int:
        return len(self.requested_attestation_nodes)

    @property
    def num_slots(self) -> int:
        """Leaf slots in the ticket, selected node's included (contract's extra count + 1)."""
        return len(self.stack_merkle_leaves) // HASH_LEN

    def leaf_at(self, slot: int) -> bytes:
        return self.stack_merkle_leaves[slot * HASH_LEN : (slot + 1) * HASH_LEN]


def parse_ticket(obj: Mapping[str, Any], *, is_claimed: bool = False) -> SettlementTicket:
    """Parse the ticket object's RPC JSON (fields as named in db.move)."""
    try:
        leaves = byte_vector(get(obj, "stack_merkle_leaves_vector"), "stack_merkle_leaves_vector")
        if not leaves or len(leaves) % HASH_LEN:
            raise MoveJsonError(
                f"stack_merkle_leaves_vector is {len(leaves)} bytes, not a positive multiple of 32"
            )
        return SettlementTicket(
            stack_small_id=small_id(get(obj, "stack_small_id"), "stack_small_id"),
            selected_node_id=small_id(get(obj, "selected_node_id"), "selected_node_id"),
            num_claimed_compute_units=u64(
                get(obj, "num_claimed_compute_units"), "num_claimed_compute_units"
            ),
            requested_attestation_nodes=small_id_list(
                get(obj, "requested_attestation_nodes"), "requested_attestation_nodes"
            ),
            committed_stack_proof=byte_vector(
                get(obj, "committed_stack_proof"), "committed_stack_proof"
            ),
            stack_merkle_leaves=leaves,
            dispute_settled_at_epoch=u64(
                get(obj, "dispute_settled_at_epoch"), "dispute_settled_at_epoch"
            ),
            already_attested_nodes=small_id_list(
                get(obj, "already_attested_nodes"), "already_attested_nodes"
            ),
            is_in_dispute=boolean(get(obj, "is_in_dispute"), "is_in_dispute"),
            is_claimed=is_claimed,
            object_id=object_id(obj["id"]) if "id" in obj else None,
        )
    except MoveJsonError as exc:
        raise TicketParseError(f"settlement ticket: {exc}") from exc


def parse_ticket_field(obj: Mapping[str, Any]) -> tuple[int, str]:
    """(stack_small_id, ticket object id) from the ObjectTable entry's field object JSON.

    Shape: {"id": …, "name": {"name": {"inner": "7"}}, "value": "0x<ticket id>"}.
    """
    try:
        name = get(get(obj, "name"), "name")
        return small_id(name, "name"), object_id(get(obj, "value"), "value")
    except MoveJsonError as exc:
        raise TicketParseError(f"ticket field: {exc}") from exc


def attestation_slot(ticket: SettlementTicket, node_id: int) -> int | None:
    """The node's leaf slot: its FIRST position in requested_attestation_nodes, plus 1.

    Sampling is with replacement, so a node may appear more than once; the contract always
    writes that node's leaf at its first position.
    """
    try:
        return ticket.requested_attestation_nodes.index(node_id) + 1
    except ValueError:
        return None


def has_attested(ticket: SettlementTicket, node_id: int) -> bool:
    """Whether `node_id` already attested (the contract would accept, and count, a repeat)."""
    return node_id in ticket.already_attested_nodes


def attestation_status(ticket: SettlementTicket) -> AttestationStatus:
    """Failed once disputed (nothing clears a dispute); Complete once the contract counted
    as many attestations as requested without a dispute (its final check passed); else
    Pending. A ticket with no requested attestation nodes is Complete."""
    if ticket.is_in_dispute:
        return AttestationStatus.FAILED
    if ticket.received_attestations >= ticket.required_attestations:
        return AttestationStatus.COMPLETE
    return AttestationStatus.PENDING


def attestation_window_open(ticket: SettlementTicket, current_epoch: int) -> bool:
    """Attestations are accepted while current epoch <= dispute_settled_at_epoch."""
    return current_epoch <= ticket.dispute_settled_at_epoch


def is_claimable(ticket: SettlementTicket, current_epoch: int) -> bool:
    """What claim_funds checks on the ticket (besides the badge): no dispute, period over.

    The contract does not require the attestations to be complete; missing attesters are
    slashed at claim time.
    """
    return (
        not ticket.is_claimed
        and not ticket.is_in_dispute
        and current_epoch >= ticket.dispute_settled_at_epoch
    )


def is_settled(ticket: SettlementTicket, current_epoch: int) -> bool:
    """The seed's "settlement complete": the required attestations arrived, all agreed (no
    dispute), and the dispute period passed (current epoch >= dispute_settled_at_epoch)."""
    return (
        attestation_status(ticket) is AttestationStatus.COMPLETE
        and current_epoch >= ticket.dispute_settled_at_epoch
    )
