"""Offline construction of Sui TransactionData for one fully resolved MoveCall.

Nothing here talks to a node: every object reference, the gas coin, price and budget
are given, so the BCS bytes and therefore the digest are known before anything is
sent (the write-ahead rule of the submission protocol). pysui's BCS classes do the
encoding; pure values are encoded here because their types are fixed by `PureArg`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

import base58
from pysui.sui.sui_bcs import bcs

from atoma_operator.sui.types import (
    MoveCall,
    ObjectRef,
    OwnedObjectArg,
    PureArg,
    SharedObjectArg,
)

_U64_MAX = 2**64 - 1


def normalize_id(value: str) -> str:
    """Canonical Sui address / object id: "0x" + 64 lowercase hex digits."""
    raw = value.strip().lower()
    raw = raw.removeprefix("0x")
    if not raw or len(raw) > 64 or any(c not in "0123456789abcdef" for c in raw):
        raise ValueError(f"not a Sui address or object id: {value!r}")
    return "0x" + raw.zfill(64)


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


def _u64(value: int) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _U64_MAX:
        raise ValueError(f"u64 out of range: {value!r}")
    return value.to_bytes(8, "little")


def _byte_seq(value: object) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, list | tuple) and all(
        isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in value
    ):
        return bytes(value)
    raise ValueError("vector<u8> needs bytes or a list of ints 0..255")


def encode_pure(arg: PureArg) -> bytes:
    """BCS encoding of one pure argument."""
    value = arg.value
    match arg.type:
        case "u8":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
                raise ValueError(f"u8 out of range: {value!r}")
            return bytes([value])
        case "u64":
            return _u64(value)
        case "bool":
            if not isinstance(value, bool):
                raise ValueError(f"bool expected, got {type(value).__name__}")
            return b"\x01" if value else b"\x00"
        case "address":
            return bytes.fromhex(normalize_id(str(value))[2:])
        case "vector<u8>":
            data = _byte_seq(value)
            return _uleb128(len(data)) + data
        case "vector<u64>":
            if not isinstance(value, list | tuple):
                raise ValueError("vector<u64> needs a list of ints")
            return _uleb128(len(value)) + b"".join(_u64(v) for v in value)
    raise ValueError(f"unsupported pure type {arg.type!r}")


def _object_ref(ref: ObjectRef) -> bcs.ObjectReference:
    return bcs.ObjectReference(
        bcs.Address.from_str(normalize_id(ref.object_id)),
        ref.version,
        bcs.Digest.from_str(ref.digest),
    )


class _Inputs:
    """Call inputs in order; an object passed twice becomes one input (Sui requires it)."""

    def __init__(self) -> None:
        self.args: list[bcs.CallArg] = []
        self._objects: dict[str, int] = {}

    def pure(self, data: bytes) -> int:
        self.args.append(bcs.CallArg("Pure", list(data)))
        return len(self.args) - 1

    def shared(self, arg: SharedObjectArg) -> int:
        oid = normalize_id(arg.object_id)
        if (index := self._objects.get(oid)) is not None:
            current = self.args[index].value.value
            if arg.mutable and not current.Mutable:
                current.Mutable = True
            return index
        ref = bcs.SharedObjectReference(
            bcs.Address.from_str(oid), arg.initial_shared_version, arg.mutable
        )
        self.args.append(bcs.CallArg("Object", bcs.ObjectArg("SharedObject", ref)))
        self._objects[oid] = len(self.args) - 1
        return self._objects[oid]

    def owned(self, arg: OwnedObjectArg) -> int:
        oid = normalize_id(arg.ref.object_id)
        if (index := self._objects.get(oid)) is not None:
            return index
        obj = bcs.ObjectArg("ImmOrOwnedObject", _object_ref(arg.ref))
        self.args.append(bcs.CallArg("Object", obj))
        self._objects[oid] = len(self.args) - 1
        return self._objects[oid]


def build_transaction_data(
    *,
    sender: str,
    call: MoveCall,
    gas_coin: ObjectRef,
    gas_price: int,
    gas_budget: int,
    gas_owner: str | None = None,
) -> bytes:
    """BCS TransactionData (V1, no expiration) of a single-command programmable tx."""
    if gas_price <= 0 or gas_budget <= 0:
        raise ValueError("gas price and budget must be positive")
    if normalize_id(gas_coin.object_id) in {
        normalize_id(a.ref.object_id) for a in call.arguments if isinstance(a, OwnedObjectArg)
    }:
        raise ValueError("the gas coin cannot also be a call argument")
    inputs = _Inputs()
    arg_indexes: list[int] = []
    for arg in call.arguments:
        if isinstance(arg, SharedObjectArg):
            arg_indexes.append(inputs.shared(arg))
        elif isinstance(arg, OwnedObjectArg):
            arg_indexes.append(inputs.owned(arg))
        else:
            arg_indexes.append(inputs.pure(encode_pure(arg)))
    move_call = bcs.ProgrammableMoveCall(
        bcs.Address.from_str(normalize_id(call.package)),
        call.module,
        call.function,
        [bcs.TypeTag.type_tag_from(t) for t in call.type_arguments],
        [bcs.Argument("Input", i) for i in arg_indexes],
    )
    kind = bcs.TransactionKind(
        "ProgrammableTransaction",
        bcs.ProgrammableTransaction(inputs.args, [bcs.Command("MoveCall", move_call)]),
    )
    sender_id = normalize_id(sender)
    gas = bcs.GasData(
        [_object_ref(gas_coin)],
        bcs.Address.from_str(normalize_id(gas_owner) if gas_owner else sender_id),
        gas_price,
        gas_budget,
    )
    data = bcs.TransactionData(
        "V1",
        bcs.TransactionDataV1(
            kind,
            bcs.Address.from_str(sender_id),
            gas,
            bcs.TransactionExpiration("None", None),
        ),
    )
    return bytes(data.serialize())


def transaction_digest(tx_bytes: bytes) -> str:
    """base58(blake2b-256(b"TransactionData::" ‖ bytes)), as Sui computes it."""
    digest = hashlib.blake2b(b"TransactionData::" + tx_bytes, digest_size=32).digest()
    return str(base58.b58encode(digest).decode())


def decode_transaction_data(tx_bytes: bytes | str) -> bcs.TransactionData:
    """Parse BCS TransactionData (bytes or base64), e.g. to inspect a recorded tx."""
    raw = base64.b64decode(tx_bytes) if isinstance(tx_bytes, str) else tx_bytes
    data: bcs.TransactionData = bcs.TransactionData.deserialize(raw)
    return data


def gas_payment(tx_bytes: bytes | str) -> Sequence[ObjectRef]:
    """The gas coin references a recorded transaction pays with."""
    data = decode_transaction_data(tx_bytes).value
    return tuple(_from_bcs_ref(r) for r in data.GasData.Payment)


def _from_bcs_ref(ref: bcs.ObjectReference) -> ObjectRef:
    return ObjectRef(
        object_id=ref.ObjectID.to_address_str(),
        version=int(ref.SequenceNumber),
        digest=ref.ObjectDigest.to_digest_str(),
    )


def owned_inputs(tx_bytes: bytes | str) -> Sequence[ObjectRef]:
    """The owned objects (e.g. a node badge) a recorded programmable transaction uses."""
    data = decode_transaction_data(tx_bytes).value
    out: list[ObjectRef] = []
    for arg in data.TransactionKind.value.Inputs:
        if arg.enum_name == "Object" and arg.value.enum_name == "ImmOrOwnedObject":
            out.append(_from_bcs_ref(arg.value.value))
    return tuple(out)
