"""Typed events of the Atoma `db` module, parsed from their RPC JSON form.

Field names are the contract's. Each parsed event keeps the transaction digest and event
sequence number of its `ChainEvent`, which together identify it (for idempotent replay).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from atoma_operator.sui.types import ChainEvent

from .movejson import (
    MoveJsonError,
    byte_vector,
    field,
    normalize_address,
    small_id,
    small_id_list,
    u64,
)

MODULE = "db"


class EventParseError(ValueError):
    """An event of a known Atoma type whose fields are malformed."""


@dataclass(frozen=True)
class StackTrySettleEvent:
    tx_digest: str
    event_seq: int
    stack_small_id: int
    selected_node_id: int
    requested_attestation_nodes: tuple[int, ...]
    committed_stack_proof: bytes
    stack_merkle_leaf: bytes
    num_claimed_compute_units: int


@dataclass(frozen=True)
class NewStackSettlementAttestationEvent:
    tx_digest: str
    event_seq: int
    stack_small_id: int
    attestation_node_id: int
    committed_stack_proof: bytes
    stack_merkle_leaf: bytes


@dataclass(frozen=True)
class StackSettlementTicketEvent:
    """All requested attestations arrived and the contract's final check passed."""

    tx_digest: str
    event_seq: int
    stack_small_id: int
    selected_node_id: int
    num_claimed_compute_units: int
    requested_attestation_nodes: tuple[int, ...]
    dispute_settled_at_epoch: int  # the epoch of the final attestation, as the contract emits
    committed_stack_proof: bytes


@dataclass(frozen=True)
class StackAttestationDisputeEvent:
    tx_digest: str
    event_seq: int
    stack_small_id: int
    attestation_commitment: bytes
    attestation_node_id: int
    original_node_id: int
    original_commitment: bytes


@dataclass(frozen=True)
class StackSettlementTicketClaimedEvent:
    tx_digest: str
    event_seq: int
    stack_small_id: int
    selected_node_id: int
    attestation_nodes: tuple[int, ...]
    num_claimed_compute_units: int
    user_refund_amount: int


AtomaEvent = (
    StackTrySettleEvent
    | NewStackSettlementAttestationEvent
    | StackSettlementTicketEvent
    | StackAttestationDisputeEvent
    | StackSettlementTicketClaimedEvent
)


def _try_settle(f: dict[str, Any], d: str, s: int) -> AtomaEvent:
    return StackTrySettleEvent(
        d,
        s,
        small_id(field(f, "stack_small_id"), "stack_small_id"),
        small_id(field(f, "selected_node_id"), "selected_node_id"),
        tuple(
            small_id_list(field(f, "requested_attestation_nodes"), "requested_attestation_nodes")
        ),
        byte_vector(field(f, "committed_stack_proof"), "committed_stack_proof"),
        byte_vector(field(f, "stack_merkle_leaf"), "stack_merkle_leaf"),
        u64(field(f, "num_claimed_compute_units"), "num_claimed_compute_units"),
    )


def _attestation(f: dict[str, Any], d: str, s: int) -> AtomaEvent:
    return NewStackSettlementAttestationEvent(
        d,
        s,
        small_id(field(f, "stack_small_id"), "stack_small_id"),
        small_id(field(f, "attestation_node_id"), "attestation_node_id"),
        byte_vector(field(f, "committed_stack_proof"), "committed_stack_proof"),
        byte_vector(field(f, "stack_merkle_leaf"), "stack_merkle_leaf"),
    )


def _ticket(f: dict[str, Any], d: str, s: int) -> AtomaEvent:
    return StackSettlementTicketEvent(
        d,
        s,
        small_id(field(f, "stack_small_id"), "stack_small_id"),
        small_id(field(f, "selected_node_id"), "selected_node_id"),
        u64(field(f, "num_claimed_compute_units"), "num_claimed_compute_units"),
        tuple(
            small_id_list(field(f, "requested_attestation_nodes"), "requested_attestation_nodes")
        ),
        u64(field(f, "dispute_settled_at_epoch"), "dispute_settled_at_epoch"),
        byte_vector(field(f, "committed_stack_proof"), "committed_stack_proof"),
    )


def _dispute(f: dict[str, Any], d: str, s: int) -> AtomaEvent:
    return StackAttestationDisputeEvent(
        d,
        s,
        small_id(field(f, "stack_small_id"), "stack_small_id"),
        byte_vector(field(f, "attestation_commitment"), "attestation_commitment"),
        small_id(field(f, "attestation_node_id"), "attestation_node_id"),
        small_id(field(f, "original_node_id"), "original_node_id"),
        byte_vector(field(f, "original_commitment"), "original_commitment"),
    )


def _claimed(f: dict[str, Any], d: str, s: int) -> AtomaEvent:
    return StackSettlementTicketClaimedEvent(
        d,
        s,
        small_id(field(f, "stack_small_id"), "stack_small_id"),
        small_id(field(f, "selected_node_id"), "selected_node_id"),
        tuple(small_id_list(field(f, "attestation_nodes"), "attestation_nodes")),
        u64(field(f, "num_claimed_compute_units"), "num_claimed_compute_units"),
        u64(field(f, "user_refund_amount"), "user_refund_amount"),
    )


_PARSERS: dict[str, Callable[[dict[str, Any], str, int], AtomaEvent]] = {
    "StackTrySettleEvent": _try_settle,
    "NewStackSettlementAttestationEvent": _attestation,
    "StackSettlementTicketEvent": _ticket,
    "StackAttestationDisputeEvent": _dispute,
    "StackSettlementTicketClaimedEvent": _claimed,
}

EVENT_NAMES: tuple[str, ...] = tuple(_PARSERS)


def event_type(package_id: str, name: str) -> str:
    """Full event type, e.g. "0x…::db::StackTrySettleEvent" (package = the type's origin)."""
    return f"{normalize_address(package_id)}::{MODULE}::{name}"


def parse_event(event: ChainEvent, *, package_id: str | None = None) -> AtomaEvent | None:
    """The typed form of an Atoma `db` event; None for any other event type.

    Event types carry the package that first defined them (the original package id, not an
    upgraded one); pass it as `package_id` to ignore look-alike modules of other packages.
    """
    parts = event.type.split("::")
    if len(parts) != 3 or parts[1] != MODULE or parts[2] not in _PARSERS:
        return None
    if package_id is not None:
        try:
            if normalize_address(parts[0]) != normalize_address(package_id):
                return None
        except MoveJsonError:
            return None
    try:
        return _PARSERS[parts[2]](event.fields, event.tx_digest, event.event_seq)
    except MoveJsonError as exc:
        raise EventParseError(f"{parts[2]} in {event.tx_digest}#{event.event_seq}: {exc}") from exc
