"""Objects as Sui stores them: id, version, owner, type, Move contents, digest.

The object digest is computed the way Sui does it, blake2b-256("Object::" ‖ BCS(Object)),
over a faithful BCS encoding of the object envelope, so a stale or forged reference is
caught by comparing digests exactly as a validator would.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from . import bcs
from .crypto import b58decode, b58encode, blake2b256

SUI_COIN_TYPE = "0x2::coin::Coin<0x2::sui::SUI>"
SUI_TYPE = "0x2::sui::SUI"
RANDOM_ID = bcs.normalize_address("0x8")
CLOCK_ID = bcs.normalize_address("0x6")
GENESIS_DIGEST = b58encode(bytes(32))

OwnerKind = Literal["address", "object", "shared", "immutable"]
Contents = bcs.Struct | bcs.Raw


@dataclass(frozen=True)
class Owner:
    kind: OwnerKind
    address: str | None = None
    initial_shared_version: int | None = None

    @staticmethod
    def by(address: str) -> Owner:
        return Owner("address", address=bcs.normalize_address(address))

    @staticmethod
    def child_of(parent: str) -> Owner:
        """Owned by another object (dynamic object fields, table entries)."""
        return Owner("object", address=bcs.normalize_address(parent))

    @staticmethod
    def shared(initial_shared_version: int) -> Owner:
        return Owner("shared", initial_shared_version=initial_shared_version)

    def encode(self) -> bytes:
        if self.kind == "address":
            assert self.address is not None
            return bcs.uleb128(0) + bcs.address(self.address)
        if self.kind == "object":
            assert self.address is not None
            return bcs.uleb128(1) + bcs.address(self.address)
        if self.kind == "shared":
            assert self.initial_shared_version is not None
            return bcs.uleb128(2) + bcs.u64(self.initial_shared_version)
        return bcs.uleb128(3)

    def dump(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "address": self.address,
            "initial_shared_version": self.initial_shared_version,
        }

    @staticmethod
    def load(data: dict[str, Any]) -> Owner:
        return Owner(data["kind"], data.get("address"), data.get("initial_shared_version"))


def _encode_struct_tag(type_str: str) -> bytes:
    base = type_str.split("<", 1)[0]
    address, module, name = base.split("::")
    return bcs.address(address) + bcs.string(module) + bcs.string(name) + bcs.uleb128(0)


@dataclass(frozen=True)
class StoredObject:
    object_id: str
    version: int
    owner: Owner
    type: str
    value: Contents
    previous_transaction: str = GENESIS_DIGEST
    storage_rebate: int = 0
    has_public_transfer: bool = True
    digest: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", b58encode(blake2b256(b"Object::" + self.encode())))

    @property
    def contents(self) -> bytes:
        """BCS of the Move struct alone (what `Object.contents` carries)."""
        return bcs.encode(self.value)

    @property
    def json(self) -> Any:
        return bcs.to_json(self.value)

    @property
    def is_coin(self) -> bool:
        return self.type == SUI_COIN_TYPE

    @property
    def balance(self) -> int | None:
        if not self.is_coin or not isinstance(self.value, bcs.Struct):
            return None
        for name, v in self.value.fields:
            if name == "balance" and isinstance(v, bcs.U64):
                return v.value
        return None

    def encode(self) -> bytes:
        """BCS(Object): Data::Move(MoveObject), owner, previous tx, storage rebate."""
        if self.is_coin:
            move_type = bcs.uleb128(1)  # MoveObjectType::GasCoin
        else:
            move_type = bcs.uleb128(0) + _encode_struct_tag(self.type)  # ::Other(StructTag)
        move_object = (
            move_type
            + bcs.boolean(self.has_public_transfer)
            + bcs.u64(self.version)
            + bcs.byte_vector(self.contents)
        )
        return (
            bcs.uleb128(0)
            + move_object
            + self.owner.encode()
            + bcs.byte_vector(b58decode(self.previous_transaction).rjust(32, b"\x00"))
            + bcs.u64(self.storage_rebate)
        )

    def written(
        self, *, version: int, tx_digest: str, storage_rebate: int, **changes: Any
    ) -> StoredObject:
        """The object as a transaction writes it: new version, new previous transaction."""
        return replace(
            self,
            version=version,
            previous_transaction=tx_digest,
            storage_rebate=storage_rebate,
            **changes,
        )

    def dump(self) -> dict[str, Any]:
        return {
            "object_id": self.object_id,
            "version": self.version,
            "owner": self.owner.dump(),
            "type": self.type,
            "value": bcs.dump_value(self.value),
            "previous_transaction": self.previous_transaction,
            "storage_rebate": self.storage_rebate,
            "has_public_transfer": self.has_public_transfer,
        }

    @staticmethod
    def load(data: dict[str, Any]) -> StoredObject:
        value = bcs.load_value(data["value"])
        assert isinstance(value, bcs.Struct | bcs.Raw)
        return StoredObject(
            object_id=data["object_id"],
            version=int(data["version"]),
            owner=Owner.load(data["owner"]),
            type=data["type"],
            value=value,
            previous_transaction=data["previous_transaction"],
            storage_rebate=int(data["storage_rebate"]),
            has_public_transfer=bool(data["has_public_transfer"]),
        )


def coin_value(object_id: str, balance: int) -> bcs.Struct:
    return bcs.Struct(
        SUI_COIN_TYPE,
        (("id", bcs.Address(object_id)), ("balance", bcs.U64(balance))),
    )


def with_balance(coin: StoredObject, balance: int) -> bcs.Struct:
    return coin_value(coin.object_id, balance)


def derive_object_id(tx_digest: str, creation_index: int) -> str:
    """Fresh ids the way Sui derives them: hash of the creating tx digest and a counter."""
    seed = b"\xf1" + b58decode(tx_digest).rjust(32, b"\x00") + creation_index.to_bytes(8, "little")
    return "0x" + blake2b256(seed).hex()
