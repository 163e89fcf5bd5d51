"""Both dynamic-field id derivations (operator and stand-in, written separately) against
vectors computed by Mysten's SDK (tests/data/dynamic_field_vectors.json names the source).
The derived-object vectors use a generic struct key type, the shape of the ticket table's
`Wrapper<0x…::db::StackSmallId>` keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from atoma_operator.atoma import dynfield as operator_dynfield
from sui_localnet import dynfield as standin_dynfield

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "data" / "dynamic_field_vectors.json").read_text()
)["vectors"]
IMPLEMENTATIONS: dict[str, Callable[[str, str, bytes], str]] = {
    "operator": operator_dynfield.derive_dynamic_field_id,
    "stand-in": standin_dynfield.derive_dynamic_field_id,
}


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["key_type"])
def test_matches_mystens_sdk(impl: str, vector: dict[str, Any]) -> None:
    got = IMPLEMENTATIONS[impl](
        vector["parent"], vector["key_type"], bytes.fromhex(vector["key_bcs"])
    )
    assert got == vector["expected"], vector["origin"]


def test_every_vector_names_its_origin() -> None:
    assert VECTORS and all("Mysten" in v["origin"] for v in VECTORS)


def test_ticket_keys_agree_between_operator_and_stand_in() -> None:
    pkg, table = "0x" + "ab" * 32, "0x" + "cd" * 32
    for sid in (0, 1, 7, 2**40):
        key = sid.to_bytes(8, "little")
        wrapper = f"0x2::dynamic_object_field::Wrapper<{standin_dynfield.stack_small_id_type(pkg)}>"
        assert standin_dynfield.derive_dynamic_field_id(
            table, wrapper, key
        ) == operator_dynfield.ticket_field_object_id(table, pkg, sid)


@pytest.mark.parametrize("bad", ["vector<u8", "0x2::m", "vector<u8, u64>", "0x2::m::S<u8"])
def test_stand_in_refuses_malformed_type_tags(bad: str) -> None:
    with pytest.raises(ValueError):
        standin_dynfield.type_tag(bad)
