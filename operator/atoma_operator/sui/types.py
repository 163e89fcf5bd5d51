"""Plain values exchanged between the chain gateway and the rest of the operator.

They carry no pysui or protobuf types, so the reconcile state machines can be unit
tested with a fake gateway and the gateway can change its wire client freely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol

PureType = Literal["u8", "u64", "bool", "address", "vector<u8>", "vector<u64>"]


@dataclass(frozen=True)
class ObjectRef:
    """An owned object's reference: what Sui needs to lock it for one transaction."""

    object_id: str  # "0x" + 64 lowercase hex
    version: int
    digest: str  # base58 object digest


@dataclass(frozen=True)
class SharedObjectArg:
    object_id: str
    initial_shared_version: int
    mutable: bool


@dataclass(frozen=True)
class OwnedObjectArg:
    ref: ObjectRef


@dataclass(frozen=True)
class PureArg:
    type: PureType
    value: Any  # int, bool, str (address), bytes or list[int]


MoveArg = SharedObjectArg | OwnedObjectArg | PureArg


@dataclass(frozen=True)
class MoveCall:
    """One Move call, fully resolved: no lookups are needed to build it."""

    package: str
    module: str
    function: str
    arguments: tuple[MoveArg, ...]
    type_arguments: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        return f"{self.package}::{self.module}::{self.function}"


@dataclass(frozen=True)
class SignedTransaction:
    """A transaction whose digest is known before it is sent (the write-ahead unit)."""

    digest: str  # base58 transaction digest
    tx_bytes_b64: str  # BCS TransactionData, base64
    signatures: tuple[str, ...]  # base64 serialized signatures (flag || sig || pubkey)
    gas_coin: ObjectRef
    gas_budget: int
    gas_price: int


@dataclass(frozen=True)
class ChainEvent:
    """A Move event as emitted by a transaction; `fields` is its JSON form."""

    type: str  # full type, e.g. "0xPKG::db::StackTrySettleEvent"
    fields: dict[str, Any]
    tx_digest: str
    event_seq: int
    checkpoint: int | None = None

    @property
    def name(self) -> str:
        return self.type.rsplit("::", 1)[-1]


class ExecutionStatus(StrEnum):
    SUCCESS = "Success"
    MOVE_ABORT = "MoveAbort"
    FAILURE = "Failure"  # any other execution failure (e.g. insufficient gas)


@dataclass(frozen=True)
class GasCost:
    """The effects' gas summary (MIST): what a simulation says a transaction costs."""

    computation: int
    storage: int
    rebate: int


@dataclass(frozen=True)
class TxOutcome:
    """The effects of an executed (or simulated) transaction, as far as we need them."""

    digest: str
    status: ExecutionStatus
    abort_code: int | None = None
    abort_module: str | None = None
    error: str | None = None
    gas_used_mist: int = 0  # computation + storage - rebate, what the sender paid
    gas_coin_after: ObjectRef | None = None
    changed_refs: tuple[ObjectRef, ...] = field(default=())
    """Output references of the changed objects (the badge's next version, for one)."""
    events: tuple[ChainEvent, ...] = field(default=())
    checkpoint: int | None = None
    epoch: int | None = None
    gas_cost: GasCost | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is ExecutionStatus.SUCCESS

    def ref_after(self, object_id: str) -> ObjectRef | None:
        """The object's reference after this transaction, if it changed it."""
        return next((r for r in self.changed_refs if r.object_id == object_id), None)


@dataclass(frozen=True)
class GasCoin:
    ref: ObjectRef
    balance: int


@dataclass(frozen=True)
class EventPage:
    events: tuple[ChainEvent, ...]
    next_cursor: str | None  # opaque; None when nothing new
    at_tip: bool


class ChainGateway(Protocol):
    """What the reconcile layer and the follower need from the chain.

    Implemented on pysui's gRPC client by `atoma_operator.sui.gateway.SuiGateway`;
    unit tests use an in-memory fake.
    """

    @property
    def sender(self) -> str: ...

    async def reference_gas_price(self) -> int: ...

    async def current_epoch(self) -> int: ...

    async def get_object_ref(self, object_id: str) -> ObjectRef | None: ...

    async def get_object_json(self, object_id: str) -> dict[str, Any] | None: ...

    async def get_object_type(self, object_id: str) -> str | None: ...

    async def shared_object(self, object_id: str, *, mutable: bool) -> SharedObjectArg: ...

    async def list_gas_coins(self, owner: str | None = None) -> list[GasCoin]: ...

    async def build_and_sign(
        self, call: MoveCall, *, gas_coin: ObjectRef, gas_price: int, gas_budget: int
    ) -> SignedTransaction: ...

    async def simulate(self, tx: SignedTransaction) -> TxOutcome: ...

    async def execute(self, tx: SignedTransaction) -> TxOutcome: ...

    async def get_transaction(self, digest: str) -> TxOutcome | None: ...

    async def list_events(
        self,
        *,
        event_type_prefix: str,
        after: str | None,
        limit: int,
        start_checkpoint: int | None = None,
    ) -> EventPage: ...

    async def ledger_bounds(self) -> tuple[int, int]: ...

    async def close(self) -> None: ...
