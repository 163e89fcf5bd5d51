"""Render Move values both ways a Sui node serves them: RPC JSON and BCS.

A value is described once as an ordered list of (field name, kind, python value), so the
JSON and the BCS of an object or event can never disagree. JSON follows Sui's RPC rendering:
u64 as a decimal string, vector<u8> as base64, structs as objects (a small id becomes
{"inner": "7"}), UID/ID as 0x + 64 hex, Table/ObjectTable as {"id", "size"}.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

Kind = Literal["u64", "small_id", "small_ids", "bytes", "bool", "id", "table", "wrapped_small_id"]
Field = tuple[str, Kind, Any]


def uleb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _u64(n: int) -> bytes:
    return int(n).to_bytes(8, "little")


def _id(hex_id: str) -> bytes:
    raw = bytes.fromhex(hex_id[2:] if hex_id.startswith("0x") else hex_id)
    if len(raw) != 32:
        raise ValueError(f"object id {hex_id!r} is not 32 bytes")
    return raw


def to_json(kind: Kind, value: Any) -> Any:
    if kind == "u64":
        return str(int(value))
    if kind == "small_id":
        return {"inner": str(int(value))}
    if kind == "wrapped_small_id":  # dynamic_object_field::Wrapper<StackSmallId>
        return {"name": {"inner": str(int(value))}}
    if kind == "small_ids":
        return [{"inner": str(int(v))} for v in value]
    if kind == "bytes":
        return base64.b64encode(bytes(value)).decode()
    if kind == "bool":
        return bool(value)
    if kind == "id":
        return str(value)
    if kind == "table":
        table_id, size = value
        return {"id": str(table_id), "size": str(int(size))}
    raise ValueError(f"unknown kind {kind}")


def to_bcs(kind: Kind, value: Any) -> bytes:
    if kind in ("u64", "small_id", "wrapped_small_id"):
        return _u64(value)
    if kind == "small_ids":
        return uleb128(len(value)) + b"".join(_u64(v) for v in value)
    if kind == "bytes":
        return uleb128(len(value)) + bytes(value)
    if kind == "bool":
        return b"\x01" if value else b"\x00"
    if kind == "id":
        return _id(value)
    if kind == "table":
        table_id, size = value
        return _id(table_id) + _u64(size)
    raise ValueError(f"unknown kind {kind}")


def render_json(fields: list[Field]) -> dict[str, Any]:
    return {name: to_json(kind, value) for name, kind, value in fields}


def render_bcs(fields: list[Field]) -> bytes:
    return b"".join(to_bcs(kind, value) for _, kind, value in fields)
