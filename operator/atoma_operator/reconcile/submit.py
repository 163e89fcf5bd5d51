"""The write-ahead submission protocol: never two different transactions for one unit.

One *unit* is one transaction's worth of work (a stack to settle, or a stack and an
attesting badge). Sui lets us know a transaction's digest before sending it, so:

1. build with an explicit gas coin, sign, and simulate (a certain abort costs nothing);
2. record the intent (digest, signed bytes, gas coin reference) in status with an
   optimistic-concurrency write: a conflict means another worker got there first;
3. execute and return the effects;
4. after a crash or timeout, `resume` looks the digest up, re-sends the *same* signed
   bytes while the gas coin still sits at the recorded version, and reports that the
   intent can be dropped only once it can no longer execute (the coin moved on).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from atoma_operator.kube import Conflict
from atoma_operator.resources.submission import PendingTransaction
from atoma_operator.sui.errors import ChainUnavailable, TransactionRejected
from atoma_operator.sui.gas import GasCoinManager, GasError, GasLease
from atoma_operator.sui.types import (
    ChainGateway,
    ExecutionStatus,
    MoveCall,
    TxOutcome,
)

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


@dataclass(frozen=True)
class Expired:
    """The recorded transaction can never execute (its gas coin moved on): rebuild."""

    reason: str


@dataclass(frozen=True)
class Busy:
    """Nothing was built: a coin or badge is tied up, or there is no usable gas coin."""

    message: str
    reason: str  # CamelCase: GasCoinBusy, NoGasCoin, BadgeBusy


StepResult = Executed | SimulatedAbort | Unknown | Refused | Expired | Busy

RecordIntent = Callable[[PendingTransaction], Awaitable[None]]


async def submit_new(
    call: MoveCall,
    *,
    gateway: ChainGateway,
    gas: GasCoinManager,
    named_gas: str | None,
    gas_price: int,
    gas_budget: int,
    attempt: int,
    record_intent: RecordIntent,
    gas_wait: float = 30.0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    may_submit: Callable[[], bool] = lambda: True,
) -> StepResult:
    """Build, simulate, record intent, execute. `record_intent` may raise Conflict.

    A lease whose transaction's outcome is unknown stays held (bound to the digest), so
    no other transaction can take that coin version until `resume` resolves it.
    """
    try:
        async with asyncio.timeout(gas_wait):
            lease = await gas.acquire(named_gas, gas_budget)
    except TimeoutError:
        which = f"gas coin {named_gas}" if named_gas else "every pooled gas coin"
        return Busy(f"{which} stayed busy for {gas_wait:.0f}s", "GasCoinBusy")
    except GasError as exc:
        return Busy(str(exc), "NoGasCoin")
    try:
        tx = await gateway.build_and_sign(
            call, gas_coin=lease.ref, gas_price=gas_price, gas_budget=gas_budget
        )
        simulated = await gateway.simulate(tx)
        if simulated.status is not ExecutionStatus.SUCCESS:
            gas.release(lease, None)
            return SimulatedAbort(simulated)
        if not may_submit():  # leadership may have gone while we waited for the coin
            gas.release(lease, None)
            return Busy("this operator lost its leader lease", "NotLeader")
        intent = PendingTransaction.from_signed(tx, attempt=attempt, recorded_at=clock())
        try:
            await record_intent(intent)
        except Conflict:
            gas.release(lease, None)  # the conditional write was refused: nothing recorded
            raise
        except BaseException:
            # The write may have landed: the coin version may belong to this digest now.
            lease.bind(tx.digest)
            gas.release(lease, None, stale=True)
            raise
        lease.bind(tx.digest)
        try:
            outcome = await gateway.execute(tx)
        except ChainUnavailable as exc:
            return Unknown(str(exc))  # the lease stays held, bound to the digest
        except TransactionRejected as exc:
            # Refused before execution: the recorded bytes never ran and never will.
            gas.release(lease, None, stale=exc.is_equivocation, reread=not exc.is_equivocation)
            return Refused(str(exc), exc.is_equivocation)
        _release_after(gas, lease, outcome)
        return Executed(outcome)
    except ChainUnavailable as exc:
        if not lease.released and lease.digest is None:
            gas.release(lease, None)
        return Unknown(str(exc))
    except TransactionRejected as exc:
        if not lease.released:
            gas.release(lease, None, stale=exc.is_equivocation, reread=not exc.is_equivocation)
        return Refused(str(exc), exc.is_equivocation)
    except BaseException:
        if not lease.released and lease.digest is None:
            gas.release(lease, None)
        raise


async def resume(
    intent: PendingTransaction,
    *,
    gateway: ChainGateway,
    gas: GasCoinManager,
    may_resend: bool = True,
) -> StepResult:
    """Settle a recorded intent after a crash or timeout, sending at most the same bytes.

    `may_resend=False` only looks the digest up (another unresolved transaction holds an
    input of ours, so re-sending could equivocate it).
    """
    lease = gas.find(intent.digest) or await gas.adopt(intent.gas_coin.to_ref(), intent.digest)
    try:
        found = await gateway.get_transaction(intent.digest)
        if found is None:
            current = await gateway.get_object_ref(intent.gas_coin.object_id)
            recorded = intent.gas_coin.version
            if current is not None and current.version == recorded:
                if not may_resend:
                    return Unknown("waiting for another transaction on the same node badge")
                try:
                    found = await gateway.execute(intent.to_signed())
                except TransactionRejected as exc:
                    # It may have executed between the lookup and the re-send.
                    found = await gateway.get_transaction(intent.digest)
                    if found is None:
                        gas.release(
                            lease, None, stale=exc.is_equivocation, reread=not exc.is_equivocation
                        )
                        return Refused(str(exc), exc.is_equivocation)
            elif current is None or current.version > recorded:
                # The coin moved on (or is gone): our transaction ran after all (the
                # lookup and the coin read are not atomic), or it can never run.
                found = await gateway.get_transaction(intent.digest)
                if found is None:
                    gas.release(lease, current)
                    return Expired(
                        f"gas coin {intent.gas_coin.object_id} moved past version "
                        f"{recorded}; the recorded transaction cannot execute"
                    )
            else:  # the node reports an older version: it lags behind, ask again later
                return Unknown(f"the node reports gas coin version {current.version} < {recorded}")
        _release_after(gas, lease, found)
        return Executed(found)
    except ChainUnavailable as exc:
        return Unknown(str(exc))  # keep the lease: the outcome is still unknown


def _release_after(gas: GasCoinManager, lease: GasLease, outcome: TxOutcome) -> None:
    gas.release(
        lease,
        outcome.gas_coin_after,
        stale=outcome.gas_coin_after is None,
        spent=max(outcome.gas_used_mist, 0),
    )
