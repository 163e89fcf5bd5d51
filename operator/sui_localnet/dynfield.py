"""Dynamic-field object ids, derived by the stand-in itself (never the operator's code).

Sui (sui-types dynamic_field::derive_dynamic_field_id) hashes with blake2b-256:
    0xf0 (HashingIntentScope::ChildObjectId) ‖ parent address ‖ u64 LE length of the key's
    BCS ‖ key BCS ‖ BCS of the key's TypeTag
Kept separate from `atoma_operator.atoma.dynfield` on purpose: a shared mistake would
pass every test against the stand-in and fail on a real node. Both are checked against
vectors from Mysten's SDK tests (tests/data/dynamic_field_vectors.json).
"""

from __future__ import annotations

from .bcs import normalize_address, uleb128
from .crypto import blake2b256

# TypeTag enum variants in declaration order (move-core-types language_storage.rs)
_VARIANT = {
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
VECTOR, STRUCT = 6, 7


def _split_params(inner: str) -> list[str]:
    """Top-level comma split of "A, B<C, D>" -> ["A", "B<C, D>"]."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        depth += {"<": 1, ">": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    parts.append(inner[start:])
    return [p.strip() for p in parts if p.strip()]


def type_tag(text: str) -> bytes:
    """BCS of the TypeTag written as `text` ("u64", "vector<u8>", "0x2::m::S<T, U>")."""
    text = text.strip()
    if text in _VARIANT:
        return bytes([_VARIANT[text]])
    base, lt, rest = text.partition("<")
    if lt and not rest.endswith(">"):
        raise ValueError(f"unbalanced type parameters in {text!r}")
    params = _split_params(rest[:-1]) if lt else []
    if base == "vector":
        if len(params) != 1:
            raise ValueError(f"vector takes one type parameter: {text!r}")
        return bytes([VECTOR]) + type_tag(params[0])
    pieces = base.split("::")
    if len(pieces) != 3 or not all(pieces):
        raise ValueError(f"not a struct type: {text!r}")
    addr, module, name = pieces
    out = bytearray([STRUCT])
    out += bytes.fromhex(normalize_address(addr)[2:])
    for ident in (module, name):
        raw = ident.encode()
        out += uleb128(len(raw)) + raw
    out += uleb128(len(params))
    for p in params:
        out += type_tag(p)
    return bytes(out)


def derive_dynamic_field_id(parent: str, key_type: str, key_bcs: bytes) -> str:
    preimage = (
        b"\xf0"
        + bytes.fromhex(normalize_address(parent)[2:])
        + len(key_bcs).to_bytes(8, "little")
        + key_bcs
        + type_tag(key_type)
    )
    return "0x" + blake2b256(preimage).hex()


def stack_small_id_type(package: str) -> str:
    return f"{normalize_address(package)}::db::StackSmallId"
