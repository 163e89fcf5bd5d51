"""Programmable-transaction commands: SplitCoins, MergeCoins, TransferObjects, MoveCall.

Runs on a `Run` (the working copy of one execution) and raises `ExecutionFailure` for
anything Sui reports as an execution error, so the ledger can revert and still charge gas.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from . import bcs
from .effects import ExecError
from .objects import SUI_COIN_TYPE, Contents, Owner, StoredObject, coin_value, derive_object_id
from .runtime import ArgValue, CallContext, ExecutionFailure, MoveRuntime, ObjectValue, PureValue
from .txdata import (
    Arg,
    MergeCoinsCmd,
    MoveCallCmd,
    OwnedInput,
    PureInput,
    SharedInput,
    SplitCoinsCmd,
    TransactionData,
    TransferObjectsCmd,
)


@dataclass
class Run:
    """Working state of one execution; discarded on failure."""

    tx: TransactionData
    digest: str
    inputs: dict[str, StoredObject]  # pre-transaction state of everything read or written
    objects: dict[str, StoredObject]
    mutable: list[str]
    results: list[list[tuple[str, Any]]] = field(default_factory=list)
    created: dict[str, int] = field(default_factory=dict)  # id -> creating command
    transferred: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    events: list[tuple[str, str, str, str, Contents]] = field(default_factory=list)
    """(called package, type-defining package, module, name, contents) per event."""
    counter: itertools.count[int] = field(default_factory=itertools.count)


class CommandsMixin:
    """The command interpreter half of the ledger (state lives in `Ledger`)."""

    objects: dict[str, StoredObject]
    runtimes: dict[str, MoveRuntime]

    @property
    def epoch(self) -> int:
        raise NotImplementedError

    def _fail(self, kind: str, text: str, command: int, **extra: Any) -> ExecutionFailure:
        return ExecutionFailure(ExecError(kind, f"{text} in command {command}", command, **extra))

    def _resolve(self, run: Run, cmd_index: int, arg_index: int, arg: Arg) -> tuple[str, Any]:
        if arg.kind == "GasCoin":
            return ("object", run.tx.gas_payment[0].object_id)
        if arg.kind == "Input":
            if arg.index >= len(run.tx.inputs):
                raise self._fail(
                    "COMMAND_ARGUMENT_ERROR",
                    f"IndexOutOfBounds {{ idx: {arg.index} }}",
                    cmd_index,
                    argument_index=arg_index,
                    argument_error="INDEX_OUT_OF_BOUNDS",
                )
            inp = run.tx.inputs[arg.index]
            if isinstance(inp, PureInput):
                return ("pure", inp.value)
            if isinstance(inp, OwnedInput):
                return ("object", inp.ref.object_id)
            if isinstance(inp, SharedInput):
                return ("object", inp.object_id)
        if arg.kind in ("Result", "NestedResult") and arg.index < len(run.results):
            values = run.results[arg.index]
            if arg.kind == "Result":
                if len(values) != 1:
                    raise self._fail(
                        "COMMAND_ARGUMENT_ERROR",
                        "InvalidResultArity",
                        cmd_index,
                        argument_index=arg_index,
                        argument_error="INVALID_RESULT_ARITY",
                    )
                return values[0]
            if arg.sub < len(values):
                return values[arg.sub]
            raise self._fail(
                "COMMAND_ARGUMENT_ERROR",
                "SecondaryIndexOutOfBounds",
                cmd_index,
                argument_index=arg_index,
                argument_error="SECONDARY_INDEX_OUT_OF_BOUNDS",
            )
        raise self._fail(
            "COMMAND_ARGUMENT_ERROR",
            f"IndexOutOfBounds {{ idx: {arg.index} }}",
            cmd_index,
            argument_index=arg_index,
            argument_error="INDEX_OUT_OF_BOUNDS",
        )

    def _coin(self, run: Run, cmd_index: int, arg_index: int, arg: Arg) -> StoredObject:
        kind, value = self._resolve(run, cmd_index, arg_index, arg)
        if kind != "object" or not run.objects[value].is_coin or value in run.deleted:
            raise self._fail(
                "COMMAND_ARGUMENT_ERROR",
                "TypeMismatch",
                cmd_index,
                argument_index=arg_index,
                argument_error="TYPE_MISMATCH",
            )
        return run.objects[value]

    def _u64(self, run: Run, cmd_index: int, arg_index: int, arg: Arg) -> int:
        kind, value = self._resolve(run, cmd_index, arg_index, arg)
        if kind != "pure" or len(value) != 8:
            raise self._fail(
                "COMMAND_ARGUMENT_ERROR",
                "InvalidBCSBytes",
                cmd_index,
                argument_index=arg_index,
                argument_error="INVALID_BCS_BYTES",
            )
        return int.from_bytes(value, "little")

    def _command(self, run: Run, index: int, cmd: Any) -> list[tuple[str, Any]]:
        if isinstance(cmd, SplitCoinsCmd):
            return self._split(run, index, cmd)
        if isinstance(cmd, MergeCoinsCmd):
            return self._merge(run, index, cmd)
        if isinstance(cmd, TransferObjectsCmd):
            return self._transfer(run, index, cmd)
        assert isinstance(cmd, MoveCallCmd)
        return self._move_call(run, index, cmd)

    def _split(self, run: Run, index: int, cmd: SplitCoinsCmd) -> list[tuple[str, Any]]:
        coin = self._coin(run, index, 0, cmd.coin)
        amounts = [self._u64(run, index, i + 1, a) for i, a in enumerate(cmd.amounts)]
        remaining = (coin.balance or 0) - sum(amounts)
        floor = run.tx.gas_budget if coin.object_id == run.tx.gas_payment[0].object_id else 0
        if remaining < floor:
            raise self._fail("INSUFFICIENT_COIN_BALANCE", "InsufficientCoinBalance", index)
        run.objects[coin.object_id] = StoredObject(
            coin.object_id,
            coin.version,
            coin.owner,
            coin.type,
            coin_value(coin.object_id, remaining),
            coin.previous_transaction,
            coin.storage_rebate,
        )
        out: list[tuple[str, Any]] = []
        for amount in amounts:
            oid = derive_object_id(run.digest, next(run.counter))
            run.objects[oid] = StoredObject(
                oid, 0, Owner.by(run.tx.sender), SUI_COIN_TYPE, coin_value(oid, amount)
            )
            run.created[oid] = index
            out.append(("object", oid))
        return out

    def _merge(self, run: Run, index: int, cmd: MergeCoinsCmd) -> list[tuple[str, Any]]:
        target = self._coin(run, index, 0, cmd.target)
        total = target.balance or 0
        for i, src in enumerate(cmd.sources):
            coin = self._coin(run, index, i + 1, src)
            if coin.object_id in (target.object_id, run.tx.gas_payment[0].object_id):
                raise self._fail(
                    "COMMAND_ARGUMENT_ERROR",
                    "InvalidGasCoinUsage",
                    index,
                    argument_index=i + 1,
                    argument_error="INVALID_GAS_COIN_USAGE",
                )
            total += coin.balance or 0
            run.deleted.add(coin.object_id)
            run.created.pop(coin.object_id, None)
        run.objects[target.object_id] = StoredObject(
            target.object_id,
            target.version,
            target.owner,
            target.type,
            coin_value(target.object_id, total),
            target.previous_transaction,
            target.storage_rebate,
        )
        return []

    def _transfer(self, run: Run, index: int, cmd: TransferObjectsCmd) -> list[tuple[str, Any]]:
        kind, recipient = self._resolve(run, index, len(cmd.objects), cmd.address)
        if kind != "pure" or len(recipient) != 32:
            raise self._fail(
                "COMMAND_ARGUMENT_ERROR",
                "InvalidBCSBytes",
                index,
                argument_index=len(cmd.objects),
                argument_error="INVALID_BCS_BYTES",
            )
        owner = Owner.by("0x" + recipient.hex())
        for i, arg in enumerate(cmd.objects):
            kind, oid = self._resolve(run, index, i, arg)
            obj = run.objects.get(oid) if kind == "object" else None
            if obj is None or obj.owner.kind == "shared" or not obj.has_public_transfer:
                raise self._fail(
                    "COMMAND_ARGUMENT_ERROR",
                    "InvalidTransferObject",
                    index,
                    argument_index=i,
                    argument_error="INVALID_TRANSFER_OBJECT",
                )
            run.objects[oid] = StoredObject(
                obj.object_id,
                obj.version,
                owner,
                obj.type,
                obj.value,
                obj.previous_transaction,
                obj.storage_rebate,
                obj.has_public_transfer,
            )
            run.transferred.add(oid)
        return []

    def _move_call(self, run: Run, index: int, cmd: MoveCallCmd) -> list[tuple[str, Any]]:
        pkg = bcs.normalize_address(cmd.package)
        runtime = self.runtimes.get(pkg)
        if runtime is None or not runtime.has_module(cmd.module):
            raise self._fail(
                "FUNCTION_NOT_FOUND",
                f"FunctionNotFound: {pkg}::{cmd.module}::{cmd.function}",
                index,
            )
        args: list[ArgValue] = []
        for i, arg in enumerate(cmd.arguments):
            kind, value = self._resolve(run, index, i, arg)
            if kind == "pure":
                args.append(PureValue(value))
            else:
                if value in run.created:
                    raise self._fail(
                        "COMMAND_ARGUMENT_ERROR",
                        "TypeMismatch",
                        index,
                        argument_index=i,
                        argument_error="TYPE_MISMATCH",
                    )
                args.append(ObjectValue(run.objects[value], value in run.mutable))
        outcome = runtime.call(
            CallContext(
                package=pkg,
                module=cmd.module,
                function=cmd.function,
                type_arguments=cmd.type_arguments,
                args=tuple(args),
                sender=run.tx.sender,
                epoch=self.epoch,
                tx_digest=run.digest,
                command_index=index,
            )
        )
        for oid, value in outcome.updated.items():
            obj = self._load_child(run, oid)
            run.objects[oid] = StoredObject(
                obj.object_id,
                obj.version,
                obj.owner,
                obj.type,
                value,
                obj.previous_transaction,
                obj.storage_rebate,
                obj.has_public_transfer,
            )
        for oid, new in outcome.created.items():
            run.objects[oid] = StoredObject(oid, 0, new.owner, new.type, new.value)
            run.created[oid] = index
            run.transferred.add(oid)  # placed by Move code, not a dangling PTB value
        for oid in outcome.deleted:
            if oid in run.created:
                del run.created[oid]
                run.objects.pop(oid, None)
            elif oid in run.objects or oid in self.objects:
                self._load_child(run, oid)
                run.deleted.add(oid)
        for name, value in outcome.events:
            # Event.package_id is the called package; the type keeps the defining id.
            run.events.append((pkg, runtime.package_id, cmd.module, name, value))
        return []

    def _load_child(self, run: Run, oid: str) -> StoredObject:
        """Objects Move code reaches at runtime (dynamic fields) join the written set."""
        if oid not in run.objects:
            obj = self.objects[oid]
            run.inputs[oid] = obj
            run.objects[oid] = obj
        if oid not in run.mutable and oid not in run.created:
            run.mutable.append(oid)
        return run.objects[oid]
