from __future__ import annotations

import hashlib

import pytest

from atoma_operator.atoma.dynfield import (
    derive_dynamic_field_id,
    dynamic_field_object_id,
    ticket_field_object_id,
    type_tag_bcs,
)


def test_mysten_sdk_vector_u64_key() -> None:
    # Vector from the Sui TypeScript SDK's own test of deriveDynamicFieldID (u64 key 0).
    parent = "0xbef336120c90707eb387d72dde9c0e9f6fea37b9f02b1ba8de271c64ad7b6db0"
    assert (
        dynamic_field_object_id(parent, 0)
        == "0x6552700b707460a3f48d8348f7531c4bba7a9546b4cf445ba265ad2ba06b1bb3"
    )


def test_primitive_and_vector_type_tags() -> None:
    assert type_tag_bcs("u64") == b"\x02"
    assert type_tag_bcs("address") == b"\x04"
    assert type_tag_bcs("vector<u8>") == b"\x06\x01"


def test_struct_type_tag_bcs_layout() -> None:
    # 0x2::sui::SUI: variant 7, 32-byte address, "sui", "SUI", no type params
    expected = b"\x07" + bytes(31) + b"\x02" + b"\x03sui" + b"\x03SUI" + b"\x00"
    assert type_tag_bcs("0x2::sui::SUI") == expected
    nested = type_tag_bcs("0x2::coin::Coin<0x2::sui::SUI>")
    assert nested == b"\x07" + bytes(31) + b"\x02" + b"\x04coin" + b"\x04Coin" + b"\x01" + expected


@pytest.mark.parametrize("bad", ["", "vector<u8", "0x2::m", "u64 u64", "0x2::m::S<u8"])
def test_bad_type_tags(bad: str) -> None:
    with pytest.raises(ValueError):
        type_tag_bcs(bad)


def test_ticket_field_id_uses_the_object_table_wrapper() -> None:
    table = "0x" + "11" * 32
    pkg = "0x" + "22" * 32
    tag = (
        b"\x07"
        + bytes(31)
        + b"\x02"
        + b"\x14dynamic_object_field"
        + b"\x07Wrapper"
        + b"\x01"
        + b"\x07"
        + bytes.fromhex("22" * 32)
        + b"\x02db"
        + b"\x0cStackSmallId"
        + b"\x00"
    )
    key = (7).to_bytes(8, "little")
    expected = hashlib.blake2b(
        b"\xf0" + bytes.fromhex("11" * 32) + len(key).to_bytes(8, "little") + key + tag,
        digest_size=32,
    ).hexdigest()
    assert ticket_field_object_id(table, pkg, 7) == "0x" + expected
    assert ticket_field_object_id(table, pkg, 8) != ticket_field_object_id(table, pkg, 7)
    assert derive_dynamic_field_id(table, "u64", key) != ticket_field_object_id(table, pkg, 7)
