"""Run the Atoma `db` module's entry functions against `AtomaDbModel`.

This is the Move VM's job on a real node: check the call's shape (arity, argument
types, BCS of pure arguments), run the function, and translate its outcome — events,
objects created/changed/deleted, or a Move abort — into what the ledger records.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from . import bcs
from .atoma_db import AtomaDbModel, CallResult, InvalidBadgeInput, MoveAbort, MoveArithmeticError
from .effects import ExecError
from .objects import RANDOM_ID, Contents, Owner
from .runtime import (
    ArgValue,
    CallContext,
    CallOutcome,
    ExecutionFailure,
    NewObject,
    ObjectValue,
    PureValue,
)

MODULE = "db"
TX_CONTEXT = "&mut 0x2::tx_context::TxContext"

# Parameter kinds: db (&mut AtomaDb), badge (&NodeBadge), random (&Random), or a pure type.
_SIGNATURES: dict[str, tuple[str, ...]] = {
    "try_settle_stack": ("db", "badge", "u64", "u64", "vector<u8>", "vector<u8>", "random"),
    "submit_stack_settlement_attestation": ("db", "badge", "u64", "vector<u8>", "vector<u8>"),
    "start_attestation_dispute": ("db", "badge", "u64", "vector<u8>"),
    "claim_funds": ("db", "badge", "vector<u64>"),
}
# Position of each function in the module, reported in MoveLocation like a real abort.
_FUNCTION_INDEX = {name: i for i, name in enumerate(sorted(_SIGNATURES))}


class AtomaRuntime:
    """The Atoma package as the ledger sees it: one module, `db`, four entry functions."""

    def __init__(self, model: AtomaDbModel) -> None:
        self.model = model
        self.package_id = model.package_id

    def has_module(self, module: str) -> bool:
        return module == MODULE

    def describe(self, module: str, function: str) -> tuple[list[str], bool] | None:
        """Parameter types as GetFunction reports them (for pysui's argument resolution)."""
        sig = _SIGNATURES.get(function) if module == MODULE else None
        if sig is None:
            return None
        pkg = self.package_id
        names = {
            "db": f"&mut {pkg}::db::AtomaDb",
            "badge": f"&{pkg}::db::NodeBadge",
            "random": "&0x2::random::Random",
        }
        return [names.get(p, p) for p in sig] + [TX_CONTEXT], True

    def snapshot(self) -> Any:
        return self.model.snapshot()

    def restore(self, snapshot: Any) -> None:
        rng = self.model.rng
        self.model = AtomaDbModel.restore(snapshot)
        rng.setstate(self.model.rng.getstate())
        self.model.rng = rng  # keep the caller's Random object (tests may hold it)

    def call(self, ctx: CallContext) -> CallOutcome:
        sig = _SIGNATURES.get(ctx.function)
        if sig is None:
            raise _fail(
                ctx,
                "FUNCTION_NOT_FOUND",
                f"FunctionNotFound: {ctx.package}::{ctx.module}::{ctx.function}",
            )
        if ctx.type_arguments:
            raise _fail(ctx, "TYPE_ARITY_MISMATCH", "TypeArityMismatch")
        if len(ctx.args) != len(sig):
            raise _fail(ctx, "ARITY_MISMATCH", "ArityMismatch")
        values = [
            self._arg(ctx, i, kind, arg)
            for i, (kind, arg) in enumerate(zip(sig, ctx.args, strict=False))
        ]
        try:
            result = self._invoke(ctx, values)
        except MoveAbort as abort:
            module_path = abort.module.rsplit("::", 1)
            raise ExecutionFailure(
                ExecError(
                    "MOVE_ABORT",
                    f"MoveAbort(MoveLocation {{ module: ModuleId {{ address: "
                    f'{module_path[0].removeprefix("0x")}, name: Identifier("{module_path[-1]}") }}, '
                    f"function: {_FUNCTION_INDEX.get(abort.function, 0)}, instruction: 0, "
                    f'function_name: Some("{abort.function}") }}, {abort.code}) in command '
                    f"{ctx.command_index}",
                    command=ctx.command_index,
                    abort_code=abort.code,
                    abort_package=bcs.normalize_address(module_path[0]),
                    abort_module=module_path[-1],
                    abort_function=abort.function,
                    abort_function_index=_FUNCTION_INDEX.get(abort.function, 0),
                )
            ) from None
        except MoveArithmeticError as exc:
            raise _fail(
                ctx, "MOVE_PRIMITIVE_RUNTIME_ERROR", f"MovePrimitiveRuntimeError: {exc}"
            ) from None
        except InvalidBadgeInput:
            raise _fail(
                ctx, "COMMAND_ARGUMENT_ERROR", "TypeMismatch", arg=1, arg_kind="TYPE_MISMATCH"
            ) from None
        return self._outcome(result)

    def _arg(self, ctx: CallContext, index: int, kind: str, arg: ArgValue) -> Any:
        def mismatch(error: str = "TYPE_MISMATCH") -> ExecutionFailure:
            return _fail(ctx, "COMMAND_ARGUMENT_ERROR", _camel(error), arg=index, arg_kind=error)

        if kind in ("db", "badge", "random"):
            if not isinstance(arg, ObjectValue):
                raise mismatch("INVALID_USAGE_OF_PURE_ARGUMENT")
            oid = arg.obj.object_id
            if kind == "db":
                if oid != self.model.db_object_id:
                    raise mismatch()
                if not arg.mutable:
                    raise mismatch("INVALID_OBJECT_BY_MUT_REF")
            elif kind == "random" and oid != RANDOM_ID:
                raise mismatch()
            elif kind == "badge":
                if arg.obj.type != self.model.badge_type:
                    raise mismatch()
                badge = self.model.badge(oid)
                if badge is not None and arg.obj.owner.address not in (None, badge.owner):
                    self.model.transfer_badge(oid, arg.obj.owner.address)  # moved by a PTB
            return oid
        if not isinstance(arg, PureValue):
            raise mismatch()
        reader = bcs.Reader(arg.data)
        readers: dict[str, Callable[[], Any]] = {
            "u64": reader.u64,
            "vector<u8>": reader.byte_vector,
            "vector<u64>": reader.u64_vector,
        }
        try:
            value = readers[kind]()
            reader.finish()
        except ValueError:
            raise mismatch("INVALID_BCS_BYTES") from None
        return value

    def _invoke(self, ctx: CallContext, v: list[Any]) -> CallResult:
        m, sender, epoch = self.model, ctx.sender, ctx.epoch
        if ctx.function == "try_settle_stack":
            return m.try_settle_stack(
                badge_id=v[1],
                stack_small_id=v[2],
                num_claimed_compute_units=v[3],
                committed_stack_proof=v[4],
                stack_merkle_leaf=v[5],
                sender=sender,
                epoch=epoch,
            )
        if ctx.function == "submit_stack_settlement_attestation":
            return m.submit_stack_settlement_attestation(
                badge_id=v[1],
                stack_small_id=v[2],
                committed_stack_proof=v[3],
                stack_merkle_leaf=v[4],
                sender=sender,
                epoch=epoch,
            )
        if ctx.function == "start_attestation_dispute":
            return m.start_attestation_dispute(
                badge_id=v[1],
                stack_small_id=v[2],
                attestation_commitment=v[3],
                sender=sender,
                epoch=epoch,
            )
        return m.claim_funds(badge_id=v[1], settled_ticket_ids=v[2], sender=sender, epoch=epoch)

    def _outcome(self, result: CallResult) -> CallOutcome:
        out = CallOutcome()
        for event in result.events:
            out.events.append((event.name, bcs.Raw(event.fields, event.bcs)))
        for oid in result.created:
            obj = self.model.get_object(oid)
            if obj is not None:
                out.created[oid] = NewObject(obj.type, _owner(obj.owner), _contents(obj))
        for oid in result.mutated:
            obj = self.model.get_object(oid)
            if obj is not None:
                out.updated[oid] = _contents(obj)
        out.deleted.update(result.deleted)
        return out

    def object_contents(self, object_id: str) -> tuple[str, Owner, Contents] | None:
        """Type, owner and contents of a model object, for mirroring it into the ledger."""
        obj = self.model.get_object(object_id)
        if obj is None:
            return None
        return obj.type, _owner(obj.owner), _contents(obj)


def _contents(obj: Any) -> Contents:
    return bcs.Raw(obj.json, obj.bcs)


def _owner(owner: Any) -> Owner:
    if owner.kind == "shared":
        return Owner.shared(1)
    if owner.kind == "object":
        return Owner.child_of(owner.address)
    return Owner.by(owner.address)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_")).replace("Bcs", "BCS")


def _fail(
    ctx: CallContext, kind: str, text: str, *, arg: int | None = None, arg_kind: str | None = None
) -> ExecutionFailure:
    return ExecutionFailure(
        ExecError(
            kind,
            f"{text} in command {ctx.command_index}",
            ctx.command_index,
            argument_index=arg,
            argument_error=arg_kind,
        )
    )


def new_model(
    package_id: str, db_object_id: str, *, seed: int, sampling_probability: float
) -> AtomaDbModel:
    return AtomaDbModel(
        package_id=package_id,
        db_object_id=db_object_id,
        rng=random.Random(seed),
        sampling_probability=sampling_probability,
    )
