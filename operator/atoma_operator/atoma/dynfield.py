"""Locating dynamic-field objects (such as settlement tickets) without listing anything.

Sui derives a dynamic field's object id from its parent and key:
    blake2b256(0xf0 ‖ parent (32 bytes) ‖ len(bcs(key)) as u64 LE ‖ bcs(key) ‖ bcs(key TypeTag))
(0xf0 is HashingIntentScope::ChildObjectId; same as `deriveDynamicFieldID` of the Sui SDK).

Tickets live in `AtomaDb.stack_settlement_tickets: ObjectTable<StackSmallId, Ticket>`. An
ObjectTable entry is a *dynamic object field*: its key is wrapped as
`0x2::dynamic_object_field::Wrapper<K>{name: K}`, the field object `Field<Wrapper<K>, ID>`
holds the ticket's id, and the ticket is a separate object owned by that field object.
"""

from __future__ import annotations

import hashlib
import re

from .movejson import normalize_address

CHILD_OBJECT_ID_SCOPE = 0xF0
_PRIMITIVE_TAGS = {
    "bool": 0,
    "u8": 1,
    "u64": 2,
    "u128": 3,
    "address": 4,
    "signer": 5,
    "u16": 8,
    "u32": 9,
    "u256": 10,
}
_VECTOR_TAG = 6
_STRUCT_TAG = 7
_TOKEN = re.compile(r"\s*(::|<|>|,|[A-Za-z0-9_]+)")


def _uleb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _bcs_str(s: str) -> bytes:
    raw = s.encode()
    return _uleb128(len(raw)) + raw


def _tokens(text: str) -> list[str]:
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"cannot parse type tag {text!r} at {pos}")
        out.append(m.group(1))
        pos = m.end()
    return out


def _parse(tokens: list[str], i: int) -> tuple[bytes, int]:
    head = tokens[i]
    if head in _PRIMITIVE_TAGS:
        return bytes([_PRIMITIVE_TAGS[head]]), i + 1
    if head == "vector":
        if tokens[i + 1] != "<":
            raise ValueError("vector needs a type parameter")
        inner, j = _parse(tokens, i + 2)
        if tokens[j] != ">":
            raise ValueError("unclosed vector<")
        return bytes([_VECTOR_TAG]) + inner, j + 1
    # address::module::Name<params>
    if tokens[i + 1] != "::" or tokens[i + 3] != "::":
        raise ValueError(f"bad struct type near {head!r}")
    address = bytes.fromhex(normalize_address(head)[2:])
    module, name, j = tokens[i + 2], tokens[i + 4], i + 5
    params: list[bytes] = []
    if j < len(tokens) and tokens[j] == "<":
        j += 1
        while True:
            param, j = _parse(tokens, j)
            params.append(param)
            if tokens[j] == ",":
                j += 1
                continue
            if tokens[j] != ">":
                raise ValueError("unclosed type parameters")
            j += 1
            break
    body = address + _bcs_str(module) + _bcs_str(name) + _uleb128(len(params)) + b"".join(params)
    return bytes([_STRUCT_TAG]) + body, j


def type_tag_bcs(type_tag: str) -> bytes:
    """BCS of a Move TypeTag written as text, e.g. "u64" or "0x2::m::S<u8>"."""
    tokens = _tokens(type_tag)
    try:
        out, end = _parse(tokens, 0)
    except IndexError:
        raise ValueError(f"truncated type tag {type_tag!r}") from None
    if end != len(tokens):
        raise ValueError(f"trailing input in type tag {type_tag!r}")
    return out


def derive_dynamic_field_id(parent_id: str, key_type: str, key_bcs: bytes) -> str:
    """Object id of the dynamic field `key` (BCS bytes, of Move type `key_type`) of a parent."""
    h = hashlib.blake2b(digest_size=32)
    h.update(bytes([CHILD_OBJECT_ID_SCOPE]))
    h.update(bytes.fromhex(normalize_address(parent_id)[2:]))
    h.update(len(key_bcs).to_bytes(8, "little"))
    h.update(key_bcs)
    h.update(type_tag_bcs(key_type))
    return "0x" + h.hexdigest()


def dynamic_field_object_id(parent_table_id: str, key_u64: int) -> str:
    """Field object id of a `Table<u64, V>` entry (key type plain u64)."""
    return derive_dynamic_field_id(parent_table_id, "u64", key_u64.to_bytes(8, "little"))


def stack_small_id_type(type_origin_package: str) -> str:
    return f"{normalize_address(type_origin_package)}::db::StackSmallId"


def ticket_field_object_id(
    tickets_table_id: str, type_origin_package: str, stack_small_id: int
) -> str:
    """Id of the `Field<Wrapper<StackSmallId>, ID>` object for one stack's ticket.

    `tickets_table_id` is `AtomaDb.stack_settlement_tickets.id`; `type_origin_package` is the
    package that first published `db` (type tags keep the original id after upgrades). The
    field object's `value` is the ticket object's id. `StackSmallId{inner}` encodes as a u64.
    """
    key_type = f"0x2::dynamic_object_field::Wrapper<{stack_small_id_type(type_origin_package)}>"
    return derive_dynamic_field_id(tickets_table_id, key_type, stack_small_id.to_bytes(8, "little"))
