"""The write-ahead submission protocol: never two different transactions for one unit.

One *unit* is one transaction's worth of work (a stack to settle, or a stack and an
attesting badge). Sui lets us know a transaction's digest before sending it, so:

1. with a leased gas coin, build, sign and simulate (a certain abort costs nothing);
2. record the intent (digest, signed bytes, gas coin reference) in status: the record
   function raises `Conflict`/`NotFound` when it provably did not land, anything else
   when it may have;
3. execute and return the effects;
4. after a crash, timeout or lost write, `resume` looks the digest up first, re-sends the
   *same* signed bytes while the gas coin still sits at the recorded version, and calls
   the intent expired only once the coin has provably moved on without it.

These functions only talk to the chain. Who holds which coin and badge meanwhile is the
caller's business (`reconcile.holds`, `sui.gas`); each step result says what became of
the gas coin (`coin_release`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from atoma_operator.kube import Conflict, NotFound
from atoma_operator.resources.submission import PendingTransaction
from atoma_operator.sui.budget import plan_budget
from atoma_operator.sui.errors import (
    NEVER_ACCEPTED,
    ChainUnavailable,
    RejectionKind,
    TransactionRejected,
)
from atoma_operator.sui.gas import GasLease, Release
from atoma_operator.sui.types import ChainGateway, ExecutionStatus, MoveCall, TxOutcome

# --- what one step can end in ---------------------------------------------------------------


@dataclass(frozen=True)
class Executed:
    """The chain executed the transaction; its effects (success or abort) are known."""

    outcome: TxOutcome


@dataclass(frozen=True)
class SimulatedAbort:
    """Simulation predicted a failure: nothing was sent and no gas was spent."""

    outcome: TxOutcome


@dataclass(frozen=True)
class Unknown:
    """The outcome is not known yet (node unreachable, timeout): keep the intent, retry."""

    reason: str


@dataclass(frozen=True)
class Refused:
    """The node refused the transaction before executing it; the intent can be dropped."""

    reason: str
    equivocation: bool
    kind: RejectionKind | None = None
    never: bool = False  # the caller knows retrying cannot fix it (e.g. a named low price)

    @property
    def retry_cannot_fix(self) -> bool:
        """The transaction's own gas settings are refused every time (Stalled)."""
        return self.never or self.kind in NEVER_ACCEPTED


@dataclass(frozen=True)
class Expired:
    """The recorded transaction can never execute (its gas coin moved on): rebuild."""

    reason: str


@dataclass(frozen=True)
class Busy:
    """Nothing was built: a coin or badge is tied up, or there is no usable gas coin."""

    message: str
    reason: str  # CamelCase: GasCoinBusy, NoGasCoin, BadgeBusy, NotLeader
    waits_for: frozenset[str] = frozenset()
    """What to wake the unit on (a badge id, GAS_POOL); empty: retry with backoff."""


@dataclass(frozen=True)
class NotRecorded:
    """The intent write was refused (409/404): nothing was recorded, nothing was sent."""

    error: Conflict | NotFound


StepResult = Executed | SimulatedAbort | Unknown | Refused | Expired | Busy | NotRecorded

RecordIntent = Callable[[PendingTransaction], Awaitable[None]]


def coin_release(step: StepResult) -> Release | None:
    """What the step did to the gas coin; None while the outcome is unknown (keep it)."""
    if isinstance(step, Executed):
        after = step.outcome.gas_coin_after
        spent = max(step.outcome.gas_used_mist, 0)
        return Release.moved(after, spent) if after is not None else Release.unknown()
    if isinstance(step, Refused):
        return Release.unknown() if step.equivocation else Release.reread()
    if isinstance(step, Expired):
        return Release.reread()
    if isinstance(step, SimulatedAbort | NotRecorded | Busy):
        return Release.unused()
    return None


async def submit_new(
    call: MoveCall,
    *,
    gateway: ChainGateway,
    lease: GasLease,
    gas_price: int,
    gas_budget: int,
    attempt: int,
    record_intent: RecordIntent,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    may_submit: Callable[[], bool] = lambda: True,
) -> tuple[StepResult, PendingTransaction | None]:
    """Build on the leased coin, simulate, record intent, execute.

    Returns the step and the intent once one was signed (None before). `record_intent`
    raises `Conflict`/`NotFound` when its write provably did not land; any other exception
    propagates with the intent possibly recorded (the caller keeps it held).
    """
    intent: PendingTransaction | None = None
    try:
        tx = await gateway.build_and_sign(
            call, gas_coin=lease.ref, gas_price=gas_price, gas_budget=gas_budget
        )
        simulated = await gateway.simulate(tx)
        if simulated.status is not ExecutionStatus.SUCCESS:
            return SimulatedAbort(simulated), None
        if simulated.gas_cost is not None:
            # Budget as the SDKs size it, the resource's/setting's budget as the ceiling.
            plan = plan_budget(simulated.gas_cost, price=gas_price, ceiling=gas_budget)
            if not plan.fits:
                return Refused(
                    f"the call needs a gas budget of {plan.needed} MIST (simulated, with a "
                    f"margin) but at most {plan.ceiling} is allowed: raise spec.gasBudget",
                    False,
                    RejectionKind.GAS_BUDGET_TOO_LOW,
                ), None
            if plan.budget != gas_budget:
                tx = await gateway.build_and_sign(
                    call, gas_coin=lease.ref, gas_price=gas_price, gas_budget=plan.budget
                )
        if not may_submit():  # leadership may have gone while we waited for the coin
            return Busy("this operator lost its leader lease", "NotLeader"), None
        intent = PendingTransaction.from_signed(tx, attempt=attempt, recorded_at=clock())
        lease.bind(tx.digest)
        try:
            await record_intent(intent)
        except (Conflict, NotFound) as exc:
            return NotRecorded(exc), intent
        try:
            return Executed(await gateway.execute(tx)), intent
        except TransactionRejected as exc:
            # Refused before execution: it may still have run between (a re-send of a
            # digest that executed answers with its effects, but be sure).
            found = await gateway.get_transaction(tx.digest)
            if found is not None:
                return Executed(found), intent
            return Refused(str(exc), exc.is_equivocation, exc.kind), intent
    except ChainUnavailable as exc:
        return Unknown(str(exc)), intent
    except TransactionRejected as exc:  # from build or simulate (e.g. a stale input)
        return Refused(str(exc), exc.is_equivocation, exc.kind), intent


ConfirmExpiry = Callable[[str], bool]
"""digest -> True once enough lookups over a long enough window missed it (see holds)."""


async def resume(
    intent: PendingTransaction,
    *,
    gateway: ChainGateway,
    may_resend: bool = True,
    confirm_expiry: ConfirmExpiry = lambda _digest: True,
    coin_at_recorded: Callable[[str], None] = lambda _digest: None,
) -> StepResult:
    """Settle a recorded intent, sending at most the same bytes; never waits on a lease.

    `may_resend=False` only looks the digest up (another unresolved transaction holds an
    input of ours, so re-sending could race it). "Expired" needs the coin seen past the
    recorded version *and* `confirm_expiry` agreeing: one node behind a load balancer may
    miss an executed transaction for a moment, never across the whole window.
    """
    try:
        found = await gateway.get_transaction(intent.digest)
        if found is not None:
            return Executed(found)
        current = await gateway.get_object_ref(intent.gas_coin.object_id)
        recorded = intent.gas_coin.version
        if current is None or current.version > recorded:
            found = await gateway.get_transaction(intent.digest)
            if found is not None:
                return Executed(found)
            if not confirm_expiry(intent.digest):
                return Unknown(
                    f"gas coin {intent.gas_coin.object_id} moved past version {recorded} but "
                    f"transaction {intent.digest} is not found yet; confirming before rebuilding"
                )
            return Expired(
                f"gas coin {intent.gas_coin.object_id} moved past version {recorded}; the "
                "recorded transaction cannot execute"
            )
        if current.version < recorded:
            return Unknown(f"the node reports gas coin version {current.version} < {recorded}")
        coin_at_recorded(intent.digest)
        if not may_resend:
            return Unknown("waiting for another transaction on the same node badge")
        try:
            return Executed(await gateway.execute(intent.to_signed()))
        except TransactionRejected as exc:
            found = await gateway.get_transaction(intent.digest)
            if found is not None:
                return Executed(found)
            return Refused(str(exc), exc.is_equivocation, exc.kind)
    except ChainUnavailable as exc:
        return Unknown(str(exc))
