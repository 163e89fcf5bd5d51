"""The seam between the chain core and the Move code it pretends to run.

The ledger resolves PTB arguments into these values and hands a Move call to a
`MoveRuntime`; the runtime either returns events and the new contents of the objects
it changed, or raises `ExecutionFailure` (an abort or an argument error) which the
ledger records in the effects while still charging gas, as Sui does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .effects import ExecError
from .objects import Contents, Owner, StoredObject


@dataclass(frozen=True)
class PureValue:
    data: bytes


@dataclass(frozen=True)
class ObjectValue:
    obj: StoredObject
    mutable: bool  # passed as an owned object or as a mutable shared object


ArgValue = PureValue | ObjectValue


class ExecutionFailure(Exception):
    def __init__(self, error: ExecError) -> None:
        super().__init__(error.description)
        self.error = error


@dataclass(frozen=True)
class NewObject:
    type: str
    owner: Owner
    value: Contents


@dataclass
class CallOutcome:
    """What a call did. `updated` may name objects that were not inputs (child objects
    loaded at runtime, e.g. table entries); the ledger versions them like inputs."""

    events: list[tuple[str, Contents]] = field(default_factory=list)  # (struct name, value)
    updated: dict[str, Contents] = field(default_factory=dict)  # object id -> new contents
    created: dict[str, NewObject] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class CallContext:
    package: str
    module: str
    function: str
    type_arguments: tuple[str, ...]
    args: tuple[ArgValue, ...]
    sender: str
    epoch: int
    tx_digest: str
    command_index: int


class MoveRuntime(Protocol):
    package_id: str

    def has_module(self, module: str) -> bool: ...

    def call(self, ctx: CallContext) -> CallOutcome: ...

    def snapshot(self) -> Any: ...

    def restore(self, snapshot: Any) -> None: ...
