"""Decode BCS TransactionData into plain values, using pysui's own BCS classes.

Only programmable transactions are accepted (that is all a user can submit); the
commands the stand-in can execute are MoveCall, TransferObjects, SplitCoins and
MergeCoins. Anything else decodes but is refused at execution with a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pysui.sui.sui_bcs import bcs as pbcs

from .crypto import b58encode


class TransactionDecodeError(ValueError):
    pass


@dataclass(frozen=True)
class ObjRef:
    object_id: str
    version: int
    digest: str


@dataclass(frozen=True)
class PureInput:
    value: bytes


@dataclass(frozen=True)
class OwnedInput:
    ref: ObjRef


@dataclass(frozen=True)
class SharedInput:
    object_id: str
    initial_shared_version: int
    mutable: bool


@dataclass(frozen=True)
class ReceivingInput:
    ref: ObjRef


Input = PureInput | OwnedInput | SharedInput | ReceivingInput


@dataclass(frozen=True)
class Arg:
    """A PTB argument: kind is GasCoin, Input, Result or NestedResult."""

    kind: str
    index: int = 0
    sub: int = 0


@dataclass(frozen=True)
class MoveCallCmd:
    package: str
    module: str
    function: str
    type_arguments: tuple[str, ...]
    arguments: tuple[Arg, ...]


@dataclass(frozen=True)
class TransferObjectsCmd:
    objects: tuple[Arg, ...]
    address: Arg


@dataclass(frozen=True)
class SplitCoinsCmd:
    coin: Arg
    amounts: tuple[Arg, ...]


@dataclass(frozen=True)
class MergeCoinsCmd:
    target: Arg
    sources: tuple[Arg, ...]


@dataclass(frozen=True)
class UnsupportedCmd:
    name: str


Command = MoveCallCmd | TransferObjectsCmd | SplitCoinsCmd | MergeCoinsCmd | UnsupportedCmd


@dataclass(frozen=True)
class Expiration:
    """`None`, `Epoch(e)` or `ValidDuring(min_epoch, max_epoch)`."""

    kind: str
    epoch: int | None = None
    min_epoch: int | None = None
    max_epoch: int | None = None


@dataclass(frozen=True)
class TransactionData:
    sender: str
    inputs: tuple[Input, ...]
    commands: tuple[Command, ...]
    gas_payment: tuple[ObjRef, ...]
    gas_owner: str
    gas_price: int
    gas_budget: int
    expiration: Expiration

    def owned_refs(self) -> list[ObjRef]:
        """Every owned object this transaction consumes: gas coins first, then inputs."""
        refs = list(self.gas_payment)
        refs += [i.ref for i in self.inputs if isinstance(i, OwnedInput)]
        return refs


def _addr(value: Any) -> str:
    return str(value.to_address_str())


def _ref(value: Any) -> ObjRef:
    return ObjRef(
        object_id=_addr(value.ObjectID),
        version=int(value.SequenceNumber),
        digest=b58encode(bytes(value.ObjectDigest.Digest)),
    )


def _arg(value: Any) -> Arg:
    name = value.enum_name
    if name == "GasCoin":
        return Arg("GasCoin")
    if name in ("Input", "Result"):
        return Arg(name, int(value.value))
    if name == "NestedResult":
        first, second = value.value
        return Arg(name, int(first), int(second))
    raise TransactionDecodeError(f"unknown argument kind {name}")


def _input(value: Any) -> Input:
    name = value.enum_name
    if name == "Pure":
        return PureInput(bytes(value.value))
    if name == "Object":
        obj = value.value
        if obj.enum_name == "ImmOrOwnedObject":
            return OwnedInput(_ref(obj.value))
        if obj.enum_name == "SharedObject":
            shared = obj.value
            return SharedInput(
                _addr(shared.ObjectID), int(shared.SequenceNumber), bool(shared.Mutable)
            )
        if obj.enum_name == "Receiving":
            return ReceivingInput(_ref(obj.value))
    raise TransactionDecodeError(f"unsupported call argument {name}")


def _command(value: Any) -> Command:
    name = value.enum_name
    cmd = value.value
    if name == "MoveCall":
        return MoveCallCmd(
            package=_addr(cmd.Package),
            module=str(cmd.Module),
            function=str(cmd.Function),
            type_arguments=tuple(t.type_tag_to_str() for t in cmd.Type_Arguments),
            arguments=tuple(_arg(a) for a in cmd.Arguments),
        )
    if name == "TransferObjects":
        return TransferObjectsCmd(tuple(_arg(a) for a in cmd.Objects), _arg(cmd.Address))
    if name == "SplitCoin":
        return SplitCoinsCmd(_arg(cmd.FromCoin), tuple(_arg(a) for a in cmd.Amount))
    if name == "MergeCoins":
        return MergeCoinsCmd(_arg(cmd.ToCoin), tuple(_arg(a) for a in cmd.FromCoins))
    return UnsupportedCmd(name)


def _expiration(value: Any) -> Expiration:
    name = value.enum_name
    if name == "None":
        return Expiration("None")
    if name == "Epoch":
        return Expiration("Epoch", epoch=int(value.value))
    if name == "ValidDuring":
        vd = value.value
        return Expiration(
            "ValidDuring",
            min_epoch=None if vd.min_epoch.value is None else int(vd.min_epoch.value),
            max_epoch=None if vd.max_epoch.value is None else int(vd.max_epoch.value),
        )
    raise TransactionDecodeError(f"unsupported expiration {name}")


def decode_transaction(tx_bytes: bytes) -> TransactionData:
    try:
        data = pbcs.TransactionData.deserialize(tx_bytes)
        v1 = data.value
        kind = v1.TransactionKind
        if kind.enum_name != "ProgrammableTransaction":
            raise TransactionDecodeError(
                f"only programmable transactions can be submitted, got {kind.enum_name}"
            )
        ptb = kind.value
        gas = v1.GasData
        return TransactionData(
            sender=_addr(v1.Sender),
            inputs=tuple(_input(i) for i in ptb.Inputs),
            commands=tuple(_command(c) for c in ptb.Command),
            gas_payment=tuple(_ref(r) for r in gas.Payment),
            gas_owner=_addr(gas.Owner),
            gas_price=int(gas.Price),
            gas_budget=int(gas.Budget),
            expiration=_expiration(v1.TransactionExpiration),
        )
    except TransactionDecodeError:
        raise
    except Exception as exc:  # canoser raises assorted types on malformed input
        raise TransactionDecodeError(f"invalid TransactionData BCS: {exc}") from None
