"""What both state machines share: running one unit's submission and reading its result.

A *unit* is one transaction's worth of work with its own `TransactionProgress` (a stack
of a StackSettlement, or a (stack, badge) pair of an Attestation). This module turns
the submission protocol's step results into progress updates, backoff and notices,
so the two kinds differ only in how they build their Move call and read the outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from atoma_operator import metrics
from atoma_operator.atoma.aborts import AbortInfo, Disposition, classify_abort
from atoma_operator.reconcile.backoff import clear_failure, record_failure, record_terminal
from atoma_operator.reconcile.context import ReconcileContext
from atoma_operator.reconcile.submit import (
    Busy,
    Executed,
    Expired,
    RecordIntent,
    Refused,
    SimulatedAbort,
    StepResult,
    Unknown,
    resume,
    submit_new,
)
from atoma_operator.resources.submission import (
    PendingTransaction,
    SubmissionSpec,
    TransactionProgress,
)
from atoma_operator.sui.types import ExecutionStatus, MoveCall, ObjectRef, TxOutcome


class Verdict(StrEnum):
    """What became of a unit after one step."""

    SUCCEEDED = "Succeeded"  # executed, effects say success
    ALREADY_DONE = "AlreadyDone"  # the chain says the work exists already (e.g. a ticket)
    TERMINAL = "Terminal"  # will not succeed: stop, say why
    RETRY = "Retry"  # try again after the recorded backoff
    AGAIN = "Again"  # try again at once (e.g. the recorded transaction expired)


@dataclass
class Notice:
    """A Kubernetes Event to post about the resource."""

    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class UnitResult:
    verdict: Verdict
    outcome: TxOutcome | None = None
    reason: str = ""  # CamelCase, for conditions
    message: str = ""
    notices: list[Notice] = field(default_factory=list)


class StatusSink:
    """Serialises the status writes of one pass: several units may record intents at
    once, and each write sends the whole status as it stands (`render`)."""

    def __init__(
        self,
        render: Callable[[], dict[str, Any]],
        write: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        self._render = render
        self._write = write
        self._lock = asyncio.Lock()

    async def flush(self) -> None:
        async with self._lock:
            await self._write(self._render())


async def gather_all(steps: Iterable[Awaitable[None]]) -> None:
    """Run every unit to its end, then raise the first failure (if any).

    Plain gather would leave siblings running unsupervised after the first error, able
    to record intents after the pass (and kopf) already moved on.
    """
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def run_unit(
    progress: TransactionProgress,
    *,
    kind: str,
    label: str,
    badge_id: str,
    build_call: Callable[[ObjectRef], MoveCall] | None,
    ctx: ReconcileContext,
    spec: SubmissionSpec,
    record_intent: RecordIntent,
) -> UnitResult:
    """Resume the recorded intent if there is one, else build and submit a new transaction.

    `build_call(badge_ref)` is None when resuming only. `progress` is updated in place
    (pending, digest, gas, attempts, backoff); the caller owns the phase.

    The node badge is an owned input like the gas coin: every transaction bumps its
    version, and two unfinalised transactions on one version equivocate it. So units of
    one badge run one at a time (its lock), and while a transaction's outcome is unknown
    the badge stays *held* by that digest: no other unit builds on it until it resolves.
    """
    if not ctx.may_submit():
        return UnitResult(Verdict.RETRY, reason="NotLeader", message="not the leader")
    async with ctx.locks(("badge", badge_id)), ctx.submit_slots:
        holder = ctx.badge_holder(badge_id)
        mine = progress.pending.digest if progress.pending is not None else None
        if progress.pending is not None:
            step: StepResult = await resume(
                progress.pending,
                gateway=ctx.gateway,
                gas=ctx.gas,
                may_resend=holder in (None, mine),
            )
        elif build_call is None:
            return UnitResult(Verdict.AGAIN)
        elif holder is not None:
            step = Busy(f"node badge waits for transaction {holder} to resolve", "BadgeBusy")
        else:
            call = build_call(await ctx.badge_ref(badge_id))
            progress.attempts += 1

            async def _record(intent: PendingTransaction) -> None:
                # Held from before the write: if anything below fails, the badge stays
                # reserved for this digest until its outcome is known.
                ctx.badge_holds[badge_id] = intent.digest
                progress.pending = intent
                await record_intent(intent)

            step = await submit_new(
                call,
                gateway=ctx.gateway,
                gas=ctx.gas,
                named_gas=spec.gas,
                gas_price=await ctx.gas_price(spec.gas_price),
                gas_budget=spec.gas_budget or ctx.settings.gas_budget,
                attempt=progress.attempts,
                record_intent=_record,
                gas_wait=ctx.settings.gas_wait_seconds,
                clock=ctx.clock,
                may_submit=ctx.may_submit,
            )
            if isinstance(step, Executed | Unknown):
                metrics.TX_SUBMITTED.labels(kind).inc()
            mine = progress.pending.digest if progress.pending is not None else None
        result = _interpret(step, progress, kind=kind, label=label, ctx=ctx)
        if progress.pending is not None:
            ctx.badge_holds[badge_id] = progress.pending.digest
        elif mine is not None:
            ctx.resolve_badge_hold(badge_id, mine)  # our recorded transaction resolved
    return result


def _interpret(
    step: StepResult,
    progress: TransactionProgress,
    *,
    kind: str,
    label: str,
    ctx: ReconcileContext,
) -> UnitResult:
    settings = ctx.settings
    now = ctx.clock()
    base, cap = settings.retry_base_seconds, settings.retry_max_seconds
    if isinstance(step, Unknown):
        metrics.TX_RETRIES.labels(kind).inc()
        record_failure(
            progress,
            "ChainUnavailable",
            f"outcome unknown, will look it up: {step.reason}",
            now=now,
            base=base,
            cap=cap,
        )
        return UnitResult(Verdict.RETRY, reason="ChainUnavailable", message=step.reason)
    if isinstance(step, Refused):
        progress.pending = None
        if step.equivocation:
            metrics.EQUIVOCATION_REFUSALS.inc()
        metrics.TX_RETRIES.labels(kind).inc()
        record_failure(
            progress,
            "Equivocation" if step.equivocation else "TransactionRefused",
            f"refused by the node: {step.reason}",
            now=now,
            base=base,
            cap=cap,
        )
        return UnitResult(
            Verdict.RETRY,
            reason="TransactionRefused",
            message=step.reason,
            notices=[Notice("Warning", "Refused", f"{label}: {step.reason}")],
        )
    if isinstance(step, Busy):
        record_failure(progress, step.reason, step.message, now=now, base=base, cap=cap)
        return UnitResult(Verdict.RETRY, reason=step.reason, message=step.message)
    if isinstance(step, Expired):
        progress.pending = None
        return UnitResult(Verdict.AGAIN, reason="Rebuilding", message=step.reason)
    if isinstance(step, SimulatedAbort):
        return _abort_or_failure(
            step.outcome, progress, kind=kind, label=label, ctx=ctx, simulated=True
        )
    # Executed
    outcome = step.outcome
    if progress.pending is not None:
        # Intent recorded -> effects known: spans re-sends and operator restarts.
        waited = (now - progress.pending.recorded_at).total_seconds()
        metrics.TX_FINAL_LATENCY.labels(kind).observe(max(waited, 0.0))
    progress.pending = None
    progress.tx_digest = outcome.digest
    progress.gas_used_mist = outcome.gas_used_mist
    metrics.GAS_SPENT.labels(kind).inc(max(outcome.gas_used_mist, 0))
    if outcome.succeeded:
        metrics.TX_SUCCEEDED.labels(kind).inc()
        clear_failure(progress)
        # The caller posts one "Submitted" Event with the digest: one write per success.
        return UnitResult(Verdict.SUCCEEDED, outcome=outcome)
    return _abort_or_failure(outcome, progress, kind=kind, label=label, ctx=ctx, simulated=False)


def _abort_or_failure(
    outcome: TxOutcome,
    progress: TransactionProgress,
    *,
    kind: str,
    label: str,
    ctx: ReconcileContext,
    simulated: bool,
) -> UnitResult:
    now = ctx.clock()
    base, cap = ctx.settings.retry_base_seconds, ctx.settings.retry_max_seconds
    where = "simulation" if simulated else f"transaction {outcome.digest}"
    if outcome.status is ExecutionStatus.MOVE_ABORT and outcome.abort_code is not None:
        info: AbortInfo = classify_abort(outcome.abort_code, outcome.abort_module)
        metrics.TX_ABORTED.labels(kind, info.name, str(simulated).lower()).inc()
        message = f"{where} aborted with {info.name} ({info.code}): {info.meaning}"
        if info.disposition in (Disposition.ALREADY_SETTLED, Disposition.ALREADY_CLAIMED):
            clear_failure(progress)
            return UnitResult(
                Verdict.ALREADY_DONE, outcome=outcome, reason=info.name, message=message
            )
        if info.retryable:
            metrics.TX_RETRIES.labels(kind).inc()
            record_failure(progress, info.name, message, now=now, base=base, cap=cap)
            return UnitResult(Verdict.RETRY, outcome=outcome, reason=info.name, message=message)
        record_terminal(progress, info.name, message, now=now)
        return UnitResult(
            Verdict.TERMINAL,
            outcome=outcome,
            reason=info.name,
            message=message,
            notices=[Notice("Warning", "Failed", f"{label}: {message}")],
        )
    # Another execution failure (e.g. gas): may clear up (a funded coin, a lower load).
    message = f"{where} failed: {outcome.error or outcome.status.value}"
    metrics.TX_RETRIES.labels(kind).inc()
    record_failure(progress, "ExecutionFailed", message, now=now, base=base, cap=cap)
    return UnitResult(
        Verdict.RETRY,
        outcome=outcome,
        reason="ExecutionFailed",
        message=message,
        notices=[Notice("Warning", "Failed", f"{label}: {message}")],
    )
