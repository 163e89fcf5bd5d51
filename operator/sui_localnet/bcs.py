"""A minimal BCS writer and the Move-value model the stand-in renders twice.

Sui reports every Move value twice: as BCS bytes and as JSON. Both come from one
typed value here so the two renderings can never disagree. JSON follows the Sui RPC
rules: u8/u16/u32 are numbers, u64 and wider are strings, `vector<u8>` is base64,
addresses and IDs are 0x-prefixed 64-hex strings.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any


def uleb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def u8(n: int) -> bytes:
    return n.to_bytes(1, "little")


def u64(n: int) -> bytes:
    return n.to_bytes(8, "little")


def boolean(b: bool) -> bytes:
    return b"\x01" if b else b"\x00"


def byte_vector(b: bytes) -> bytes:
    return uleb128(len(b)) + b


def string(s: str) -> bytes:
    return byte_vector(s.encode())


def address(addr: str) -> bytes:
    return bytes.fromhex(normalize_address(addr)[2:])


def normalize_address(addr: str) -> str:
    """0x + 64 lowercase hex, the canonical form used everywhere in the stand-in."""
    body = addr.lower().removeprefix("0x")
    if not body or len(body) > 64 or any(c not in "0123456789abcdef" for c in body):
        raise ValueError(f"invalid Sui address: {addr!r}")
    return "0x" + body.rjust(64, "0")


# --- Move values ---------------------------------------------------------------------


@dataclass(frozen=True)
class U8:
    value: int


@dataclass(frozen=True)
class U64:
    value: int


@dataclass(frozen=True)
class Bool:
    value: bool


@dataclass(frozen=True)
class Address:
    value: str


@dataclass(frozen=True)
class Bytes:
    """`vector<u8>`."""

    value: bytes


@dataclass(frozen=True)
class Vector:
    elements: tuple[MoveValue, ...]


@dataclass(frozen=True)
class Struct:
    """A Move struct; `fields` keep declaration order, which BCS depends on."""

    type: str
    fields: tuple[tuple[str, MoveValue], ...]


@dataclass(frozen=True, eq=False)
class Raw:
    """A value whose two renderings were produced elsewhere (the db model renders its
    objects and events itself, with the same Sui rules)."""

    json: Any
    data: bytes


MoveValue = U8 | U64 | Bool | Address | Bytes | Vector | Struct | Raw


def encode(value: MoveValue) -> bytes:
    match value:
        case U8(v):
            return u8(v)
        case U64(v):
            return u64(v)
        case Bool(v):
            return boolean(v)
        case Address(v):
            return address(v)
        case Bytes(v):
            return byte_vector(v)
        case Vector(elements):
            return uleb128(len(elements)) + b"".join(encode(e) for e in elements)
        case Struct(_, fields):
            return b"".join(encode(v) for _, v in fields)
        case Raw(_, data):
            return data
    raise TypeError(f"not a Move value: {value!r}")


def to_json(value: MoveValue) -> Any:
    match value:
        case U8(v):
            return v
        case U64(v):
            return str(v)
        case Bool(v):
            return v
        case Address(v):
            return normalize_address(v)
        case Bytes(v):
            return base64.b64encode(v).decode()
        case Vector(elements):
            return [to_json(e) for e in elements]
        case Struct(_, fields):
            return {name: to_json(v) for name, v in fields}
        case Raw(json, _):
            return json
    raise TypeError(f"not a Move value: {value!r}")


def from_python(value: Any, type_name: str = "") -> MoveValue:
    """Type a plain Python value: int→u64, bytes→vector<u8>, str→address, list→vector,
    dict→struct (insertion order). Used for the db model's event and object fields."""
    if isinstance(value, bool):
        return Bool(value)
    if isinstance(value, int):
        return U64(value)
    if isinstance(value, bytes | bytearray):
        return Bytes(bytes(value))
    if isinstance(value, str):
        return Address(value)
    if isinstance(value, list | tuple):
        return Vector(tuple(from_python(v) for v in value))
    if isinstance(value, dict):
        return Struct(type_name, tuple((str(k), from_python(v)) for k, v in value.items()))
    if isinstance(value, U8 | U64 | Bool | Address | Bytes | Vector | Struct | Raw):
        return value
    raise TypeError(f"cannot type {type(value).__name__} as a Move value")


class Reader:
    """Reads the Pure arguments of Move calls (u64, vector<u8>, vector<u64>, ...)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def _take(self, n: int) -> bytes:
        if self._pos + n > len(self._data):
            raise ValueError("unexpected end of BCS input")
        chunk = self._data[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def uleb128(self) -> int:
        result, shift = 0, 0
        while True:
            byte = self._take(1)[0]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise ValueError("ULEB128 overflow")

    def u8(self) -> int:
        return self._take(1)[0]

    def u64(self) -> int:
        return int.from_bytes(self._take(8), "little")

    def boolean(self) -> bool:
        b = self.u8()
        if b > 1:
            raise ValueError("invalid bool")
        return b == 1

    def address(self) -> str:
        return "0x" + self._take(32).hex()

    def byte_vector(self) -> bytes:
        return self._take(self.uleb128())

    def u64_vector(self) -> list[int]:
        return [self.u64() for _ in range(self.uleb128())]

    def finish(self) -> None:
        if self._pos != len(self._data):
            raise ValueError("trailing bytes in BCS input")


def dump_value(value: MoveValue) -> Any:
    """A tagged, lossless JSON form of a Move value (for the snapshot file)."""
    match value:
        case U8(v):
            return {"u8": v}
        case U64(v):
            return {"u64": str(v)}
        case Bool(v):
            return {"bool": v}
        case Address(v):
            return {"address": v}
        case Bytes(v):
            return {"bytes": v.hex()}
        case Vector(elements):
            return {"vector": [dump_value(e) for e in elements]}
        case Struct(type_name, fields):
            return {"struct": type_name, "fields": [[n, dump_value(v)] for n, v in fields]}
        case Raw(json, data):
            return {"raw": data.hex(), "json": json}
    raise TypeError(f"not a Move value: {value!r}")


def load_value(data: Any) -> MoveValue:
    if "u8" in data:
        return U8(int(data["u8"]))
    if "u64" in data:
        return U64(int(data["u64"]))
    if "bool" in data:
        return Bool(bool(data["bool"]))
    if "address" in data:
        return Address(str(data["address"]))
    if "bytes" in data:
        return Bytes(bytes.fromhex(data["bytes"]))
    if "vector" in data:
        return Vector(tuple(load_value(e) for e in data["vector"]))
    if "raw" in data:
        return Raw(data["json"], bytes.fromhex(data["raw"]))
    if "struct" in data:
        return Struct(str(data["struct"]), tuple((n, load_value(v)) for n, v in data["fields"]))
    raise ValueError(f"not a dumped Move value: {data!r}")
