"""What the operator needs from the shared AtomaDb object itself (read once at start-up)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .movejson import MoveJsonError, field, object_id, u64


@dataclass(frozen=True)
class AtomaDbInfo:
    db_id: str
    stacks_table_id: str
    tickets_table_id: str  # parent of the ticket dynamic object fields
    cross_validation_probability_permille: int
    cross_validation_extra_nodes_count: int  # = attestation slots per ticket (Contract scheme)


class AtomaDbParseError(ValueError):
    pass


def parse_atoma_db(obj: Mapping[str, Any]) -> AtomaDbInfo:
    """Parse AtomaDb's RPC JSON; `Table`/`ObjectTable` fields render as {"id", "size"}."""
    try:
        return AtomaDbInfo(
            db_id=object_id(field(obj, "id"), "id"),
            stacks_table_id=object_id(field(field(obj, "stacks"), "id"), "stacks.id"),
            tickets_table_id=object_id(
                field(field(obj, "stack_settlement_tickets"), "id"), "stack_settlement_tickets.id"
            ),
            cross_validation_probability_permille=u64(
                field(obj, "cross_validation_probability_permille"),
                "cross_validation_probability_permille",
            ),
            cross_validation_extra_nodes_count=u64(
                field(obj, "cross_validation_extra_nodes_count"),
                "cross_validation_extra_nodes_count",
            ),
        )
    except MoveJsonError as exc:
        raise AtomaDbParseError(f"AtomaDb: {exc}") from exc
