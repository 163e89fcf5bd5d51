"""What both state machines share: running one unit's submission and reading its result.

A *unit* is one transaction's worth of work with its own `TransactionProgress` (a stack
of a StackSettlement, or a (stack, badge) pair of an Attestation). This module turns
the submission protocol's step results into progress updates, backoff and notices,
so the two kinds differ only in how they build their Move call and read the outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from atoma_operator import metrics
from atoma_operator.atoma.aborts import AbortInfo, Disposition, classify_abort
from atoma_operator.kube import ObjectKey
from atoma_operator.reconcile.backoff import clear_failure, record_failure, record_terminal
from atoma_operator.reconcile.context import BADGE_QUEUE, ReconcileContext
from atoma_operator.reconcile.holds import UnitRef
from atoma_operator.reconcile.submit import (
    Busy,
    Executed,
    Expired,
    NotRecorded,
    RecordIntent,
    Refused,
    SimulatedAbort,
    StepResult,
    Unknown,
    coin_release,
    resume,
    submit_new,
)
from atoma_operator.resources.common import StatusModel
from atoma_operator.resources.submission import (
    MAX_FAILED_DIGESTS,
    PendingTransaction,
    SubmissionSpec,
    TransactionProgress,
)
from atoma_operator.sui.errors import RejectionKind
from atoma_operator.sui.gas import GasCoinBusy, GasError, Release
from atoma_operator.sui.txbuild import normalize_id
from atoma_operator.sui.types import ExecutionStatus, MoveCall, ObjectRef, TxOutcome

GAS_POOL = "gas-pool"
"""What a unit waits for when no gas coin was free (any coin's release wakes it)."""


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


StatusWriter = Callable[[StatusModel], Awaitable[None]]
"""Writes the whole status (conditional; see reconcile.statuswrite)."""


class StatusSink:
    """Serialises the status writes of one pass: several units may record intents at
    once, and each write sends the whole status as it stands (`render`)."""

    def __init__(self, render: Callable[[], StatusModel], write: StatusWriter) -> None:
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


def restore_known_intent(
    progress: TransactionProgress, unit: UnitRef, ctx: ReconcileContext
) -> None:
    """Status lost an intent this process signed (wiped, or the write that recorded it
    failed without a verdict): it may still execute, so it is recorded again and resolved
    before anything else (a ticket read would otherwise call the stack done and leave
    the badge held forever)."""
    known = ctx.holds.intent_for(unit)
    if (
        progress.pending is None
        and known is not None
        and known.digest != progress.tx_digest
        and known.digest not in progress.failed_tx_digests
    ):
        progress.pending = known
        ctx.holds.unconfirm(known.digest)  # written again before it may be sent


async def run_unit(
    progress: TransactionProgress,
    *,
    kind: str,
    label: str,
    unit: UnitRef,
    badge_id: str,
    build_call: Callable[[ObjectRef], MoveCall] | None,
    ctx: ReconcileContext,
    spec: SubmissionSpec,
    record_intent: RecordIntent,
) -> UnitResult:
    """Resume the unit's unresolved intent if there is one, else build and submit anew.

    `build_call(badge_ref)` is None when resuming only. `progress` is updated in place
    (pending, digests, attempts, backoff); the caller owns the phase.

    The node badge is an owned input like the gas coin, so units of one badge run one at a
    time (its lock), and while a transaction's outcome is unknown its badge and coin stay
    held (`ctx.holds`): nothing else is built on them until it resolves. Locks are taken
    in one order — badge, then coin, then a submission slot — so no wait can be circular,
    and a unit waiting for its badge holds no coin (coins would otherwise sit idle behind
    busy badges); a resume needs no lease at all (its coin is held by its digest).
    """
    if not ctx.may_submit():
        return UnitResult(Verdict.RETRY, reason="NotLeader", message="not the leader")
    book = ctx.holds  # the caller ran restore_known_intent before its chain checks
    if progress.pending is not None:
        intent = progress.pending
        book.adopt(unit, intent)  # recorded before a restart: now a deletion cannot lose it
        if not book.is_confirmed(intent.digest):
            # Write-ahead holds for a restored intent too: its record landed nowhere
            # (or was wiped), so it is written before anything may send it.
            await record_intent(intent)
            book.confirm(intent.digest)
        async with ctx.locks(("badge", badge_id)), ctx.submit_slots:
            holder = book.holder(badge_id)
            step: StepResult = await resume(
                intent,
                gateway=ctx.gateway,
                may_resend=holder in (None, intent.digest),
                confirm_expiry=ctx.confirm_expiry,
                coin_at_recorded=book.found_again,
            )
            _note_badge(ctx, badge_id, step)
            return _conclude_step(step, intent, progress, kind=kind, label=label, ctx=ctx)
    if build_call is None:
        return UnitResult(Verdict.AGAIN)
    if not _may_queue_for(badge_id, unit.owner, ctx):
        return _conclude_step(
            _badge_busy(badge_id), None, progress, kind=kind, label=label, ctx=ctx
        )
    budget = spec.gas_budget or ctx.settings.gas_budget
    try:
        async with (
            # The badge first, then the coin: one order for everyone, and nobody holding a
            # coin ever waits for a badge, so a coin is never idle behind a busy badge.
            ctx.badge_line(badge_id, unit.owner),
            ctx.locks(("badge", badge_id)),
            ctx.gas.lease(spec.gas, budget, wait=ctx.settings.gas_wait_seconds) as lease,
            ctx.submit_slots,
        ):
            if book.holder(badge_id) is not None:
                return _conclude_step(
                    _badge_busy(badge_id), None, progress, kind=kind, label=label, ctx=ctx
                )
            call = build_call(await ctx.badge_ref(badge_id))
            progress.attempts += 1

            async def _record(intent: PendingTransaction) -> None:
                # Held from before the write: if the write fails without a verdict the
                # badge and coin stay reserved for this digest until it is resolved.
                book.claim(unit, intent, (badge_id, lease.object_id))
                progress.pending = intent
                await record_intent(intent)

            step, signed = await submit_new(
                call,
                gateway=ctx.gateway,
                lease=lease,
                gas_price=await ctx.gas_price(spec.gas_price),
                gas_budget=budget,
                attempt=progress.attempts,
                record_intent=_record,
                clock=ctx.clock,
                may_submit=ctx.may_submit,
            )
            _note_badge(ctx, badge_id, step)
            if isinstance(step, Executed | Unknown):
                metrics.TX_SUBMITTED.labels(kind).inc()
            if (
                isinstance(step, Refused)
                and step.kind is RejectionKind.GAS_PRICE_TOO_LOW
                and spec.gas_price is not None
            ):
                step = replace(step, never=True)  # the resource's own price: fixed for good
            if signed is None and (release := coin_release(step)) is not None:
                ctx.gas.release(lease, release)  # e.g. refused at simulation: stale coin
            if isinstance(step, NotRecorded):
                assert signed is not None
                progress.pending = None
                progress.attempts -= 1
                ctx.gas.settle(signed.digest, lease.object_id, Release.unused())
                book.release(signed.digest, recorded=False)
                raise step.error  # the pass re-reads the object
            return _conclude_step(step, signed, progress, kind=kind, label=label, ctx=ctx)
    except GasCoinBusy as exc:
        step = Busy(str(exc), "GasCoinBusy", frozenset({GAS_POOL}))
    except GasError as exc:
        step = Busy(str(exc), "NoGasCoin")
    return _conclude_step(step, None, progress, kind=kind, label=label, ctx=ctx)


def _may_queue_for(badge_id: str, owner: ObjectKey, ctx: ReconcileContext) -> bool:
    """Whether to wait in the badge's line (see `BADGE_QUEUE`) or to be parked."""
    line = ctx.badge_lines.get(badge_id, {})
    if ctx.holds.holder(badge_id) is not None and not line:
        return False  # an unresolved transaction that nobody is submitting: wait for it
    return owner in line or len(line) < BADGE_QUEUE


def _note_badge(ctx: ReconcileContext, badge_id: str, step: StepResult) -> None:
    """Remember the badge's next version from our own effects; forget it otherwise."""
    after = step.outcome.ref_after(normalize_id(badge_id)) if isinstance(step, Executed) else None
    ctx.badge_moved(badge_id, after)


def _badge_busy(badge_id: str) -> Busy:
    # No digest in the message: it would change the status (one more write) with every
    # transaction the badge carries while this unit waits.
    return Busy(
        "waits for its node badge (one transaction per badge at a time)",
        "BadgeBusy",
        frozenset({normalize_id(badge_id)}),
    )


def _conclude_step(
    step: StepResult,
    intent: PendingTransaction | None,
    progress: TransactionProgress,
    *,
    kind: str,
    label: str,
    ctx: ReconcileContext,
) -> UnitResult:
    """Turn the step into progress and end the holds whose outcome is now known."""
    release = coin_release(step)
    if intent is not None and release is not None:
        ctx.gas.settle(intent.digest, intent.gas_coin.object_id, release)
        ctx.holds.release(intent.digest)
    return _interpret(step, progress, kind=kind, label=label, ctx=ctx)


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
    if isinstance(step, Refused) and step.retry_cannot_fix:
        progress.pending = None
        reason = step.kind.value if step.kind is not None else "TransactionRefused"
        record_terminal(progress, reason, f"refused by the node: {step.reason}", now=now)
        return UnitResult(
            Verdict.TERMINAL,
            reason=reason,
            message=step.reason,
            notices=[Notice("Warning", "Failed", f"{label}: {step.reason}")],
        )
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
    if isinstance(step, Busy) and step.waits_for:
        # Waiting its turn is not a failure: no backoff, no status write per try; the
        # controller wakes the resource when the badge or a coin is released.
        progress.waits_for = step.waits_for  # status untouched: no write per turn waited
        return UnitResult(Verdict.RETRY, reason=step.reason, message=step.message)
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
    if isinstance(step, NotRecorded):  # run_unit raises before: nothing to record
        return UnitResult(Verdict.AGAIN)
    # Executed
    outcome = step.outcome
    if progress.pending is not None:
        # Intent recorded -> effects known: spans re-sends and operator restarts.
        waited = (now - progress.pending.recorded_at).total_seconds()
        metrics.TX_FINAL_LATENCY.labels(kind).observe(max(waited, 0.0))
    progress.pending = None
    progress.gas_used_mist = outcome.gas_used_mist
    metrics.GAS_SPENT.labels(kind).inc(max(outcome.gas_used_mist, 0))
    if outcome.succeeded:
        progress.tx_digest = outcome.digest
    else:  # kept apart: txDigest is only ever the unit's successful transaction
        progress.failed_tx_digests = [*progress.failed_tx_digests, outcome.digest][
            -MAX_FAILED_DIGESTS:
        ]
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
