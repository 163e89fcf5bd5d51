"""What an executed (or simulated) transaction produced: the stand-in's effects model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import bcs
from .crypto import b58encode, blake2b256
from .objects import StoredObject
from .txdata import TransactionData, decode_transaction


@dataclass(frozen=True)
class GasSummary:
    computation_cost: int = 0
    storage_cost: int = 0
    storage_rebate: int = 0
    non_refundable_storage_fee: int = 0

    @property
    def net(self) -> int:
        """What the gas owner pays: computation + storage - rebate."""
        return self.computation_cost + self.storage_cost - self.storage_rebate


@dataclass(frozen=True)
class ExecError:
    """An execution failure recorded in effects (the transaction still paid gas)."""

    kind: str  # ExecutionErrorExecutionErrorKind member name, e.g. "MOVE_ABORT"
    description: str
    command: int | None = None
    abort_code: int | None = None
    abort_package: str | None = None
    abort_module: str | None = None
    abort_function: str | None = None
    abort_function_index: int | None = None
    argument_index: int | None = None
    argument_error: str | None = None  # CommandArgumentErrorKind member name


@dataclass(frozen=True)
class ChangedObj:
    object_id: str
    input: StoredObject | None
    output: StoredObject | None

    @property
    def id_operation(self) -> str:
        if self.input is None:
            return "CREATED"
        if self.output is None:
            return "DELETED"
        return "NONE"


@dataclass(frozen=True)
class EventRecord:
    package_id: str
    module: str
    sender: str
    type: str
    value: bcs.Struct | bcs.Raw
    tx_digest: str
    event_seq: int
    checkpoint: int | None = None
    tx_index: int = 0

    @property
    def contents(self) -> bytes:
        return bcs.encode(self.value)

    @property
    def json(self) -> Any:
        return bcs.to_json(self.value)


@dataclass(frozen=True)
class UnchangedShared:
    object_id: str
    version: int
    digest: str
    type: str


@dataclass
class ExecutedTx:
    digest: str
    tx_bytes: bytes
    signatures: list[bytes]
    data: TransactionData
    error: ExecError | None
    gas: GasSummary
    changed: list[ChangedObj]
    gas_object_id: str | None
    unchanged_shared: list[UnchangedShared]
    events: list[EventRecord]
    epoch: int
    lamport_version: int
    dependencies: list[str]
    checkpoint: int | None = None
    timestamp_ms: int | None = None
    effects_digest: str = field(default="")

    def __post_init__(self) -> None:
        if not self.effects_digest:
            material = (
                self.digest.encode()
                + repr((self.error, self.gas, self.lamport_version)).encode()
                + b"".join(
                    (c.output.digest if c.output else "deleted").encode() for c in self.changed
                )
            )
            self.effects_digest = b58encode(blake2b256(b"TransactionEffects::" + material))

    @property
    def success(self) -> bool:
        return self.error is None

    @property
    def gas_object(self) -> ChangedObj | None:
        for c in self.changed:
            if c.object_id == self.gas_object_id:
                return c
        return None

    @property
    def events_digest(self) -> str | None:
        if not self.events:
            return None
        return b58encode(
            blake2b256(b"TransactionEvents::" + b"".join(e.contents for e in self.events))
        )

    def dump(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "tx_bytes": self.tx_bytes.hex(),
            "signatures": [s.hex() for s in self.signatures],
            "error": None if self.error is None else self.error.__dict__,
            "gas": self.gas.__dict__,
            "changed": [
                {
                    "object_id": c.object_id,
                    "input": c.input.dump() if c.input else None,
                    "output": c.output.dump() if c.output else None,
                }
                for c in self.changed
            ],
            "gas_object_id": self.gas_object_id,
            "unchanged_shared": [u.__dict__ for u in self.unchanged_shared],
            "events": [
                {
                    **{k: v for k, v in e.__dict__.items() if k != "value"},
                    "value": bcs.dump_value(e.value),
                }
                for e in self.events
            ],
            "epoch": self.epoch,
            "lamport_version": self.lamport_version,
            "dependencies": self.dependencies,
            "checkpoint": self.checkpoint,
            "timestamp_ms": self.timestamp_ms,
            "effects_digest": self.effects_digest,
        }

    @staticmethod
    def load(d: dict[str, Any]) -> ExecutedTx:
        tx_bytes = bytes.fromhex(d["tx_bytes"])
        events = []
        for e in d["events"]:
            value = bcs.load_value(e["value"])
            assert isinstance(value, bcs.Struct | bcs.Raw)
            events.append(EventRecord(**{**e, "value": value}))
        return ExecutedTx(
            digest=d["digest"],
            tx_bytes=tx_bytes,
            signatures=[bytes.fromhex(s) for s in d["signatures"]],
            data=decode_transaction(tx_bytes),
            error=None if d["error"] is None else ExecError(**d["error"]),
            gas=GasSummary(**d["gas"]),
            changed=[
                ChangedObj(
                    c["object_id"],
                    StoredObject.load(c["input"]) if c["input"] else None,
                    StoredObject.load(c["output"]) if c["output"] else None,
                )
                for c in d["changed"]
            ],
            gas_object_id=d["gas_object_id"],
            unchanged_shared=[UnchangedShared(**u) for u in d["unchanged_shared"]],
            events=events,
            epoch=d["epoch"],
            lamport_version=d["lamport_version"],
            dependencies=list(d["dependencies"]),
            checkpoint=d["checkpoint"],
            timestamp_ms=d["timestamp_ms"],
            effects_digest=d["effects_digest"],
        )


@dataclass(frozen=True)
class CheckpointRecord:
    sequence_number: int
    digest: str
    epoch: int
    timestamp_ms: int
    transactions: tuple[str, ...]
    previous_digest: str | None

    def dump(self) -> dict[str, Any]:
        return {**self.__dict__, "transactions": list(self.transactions)}

    @staticmethod
    def load(d: dict[str, Any]) -> CheckpointRecord:
        return CheckpointRecord(**{**d, "transactions": tuple(d["transactions"])})
