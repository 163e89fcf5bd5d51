"""Reading Move values from the JSON the Sui gRPC API renders (objects and events).

Sui's RPC rendering: u64 as a decimal string, u8/u16/u32 as numbers, vector<u8> as a
base64 string (older nodes: an array of numbers), structs as objects keyed by field name —
so a `NodeSmallId` arrives as {"inner": "7"} — and UID/ID as 0x-prefixed hex strings.
These readers accept all of those and reject anything else with `MoveJsonError`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

U64_MAX = 2**64 - 1


class MoveJsonError(ValueError):
    """A Move value in RPC JSON did not have the expected shape."""


def field(obj: Mapping[str, Any], name: str) -> Any:
    if not isinstance(obj, Mapping):
        raise MoveJsonError(f"expected a JSON object, got {type(obj).__name__}")
    if name not in obj:
        raise MoveJsonError(f"missing field {name!r}")
    return obj[name]


def u64(value: Any, what: str = "value") -> int:
    """A u64 given as a decimal string (the RPC form) or a JSON integer."""
    if isinstance(value, bool):
        raise MoveJsonError(f"{what}: expected u64, got a boolean")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        n = int(value)
    else:
        raise MoveJsonError(f"{what}: expected u64 as a decimal string, got {value!r}")
    if not 0 <= n <= U64_MAX:
        raise MoveJsonError(f"{what}: {n} is out of the u64 range")
    return n


def small_id(value: Any, what: str = "id") -> int:
    """A `NodeSmallId`/`StackSmallId` struct ({"inner": "7"}) or a bare u64."""
    if isinstance(value, Mapping):
        return u64(field(value, "inner"), what)
    return u64(value, what)


def small_id_list(value: Any, what: str = "ids") -> list[int]:
    if not isinstance(value, list):
        raise MoveJsonError(f"{what}: expected a list, got {type(value).__name__}")
    return [small_id(v, f"{what}[{i}]") for i, v in enumerate(value)]


def byte_vector(value: Any, what: str = "bytes") -> bytes:
    """A vector<u8>: base64 string (current RPC form) or a list of numbers (older form)."""
    if isinstance(value, list):
        if not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in value):
            raise MoveJsonError(f"{what}: list is not made of bytes")
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise MoveJsonError(f"{what}: not valid base64") from None
    raise MoveJsonError(f"{what}: expected base64 string or byte list, got {type(value).__name__}")


def boolean(value: Any, what: str = "flag") -> bool:
    if not isinstance(value, bool):
        raise MoveJsonError(f"{what}: expected a boolean, got {value!r}")
    return value


def object_id(value: Any, what: str = "id") -> str:
    """A UID/ID as a normalized 0x + 64 hex string (a UID may arrive as {"id": "0x.."})."""
    if isinstance(value, Mapping):
        value = field(value, "id")
    if not isinstance(value, str):
        raise MoveJsonError(f"{what}: expected an object id string, got {value!r}")
    return normalize_address(value, what)


def normalize_address(value: str, what: str = "address") -> str:
    s = value[2:] if value[:2].lower() == "0x" else value
    if not s or len(s) > 64:
        raise MoveJsonError(f"{what}: {value!r} is not a Sui address")
    try:
        int(s, 16)
    except ValueError:
        raise MoveJsonError(f"{what}: {value!r} is not hex") from None
    return "0x" + s.lower().rjust(64, "0")
