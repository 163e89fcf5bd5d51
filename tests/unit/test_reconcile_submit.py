"""The write-ahead submission protocol (`reconcile.submit`) against the in-memory chain."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime

import pytest
from fakes import (
    GAS_USED,
    PACKAGE_ID,
    Abort,
    FakeGateway,
    Reject,
    Succeed,
    Unavailable,
    abort,
    oid,
)

from atoma_operator.atoma import calls
from atoma_operator.kube import Conflict, NotFound
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
from atoma_operator.resources.submission import PendingTransaction
from atoma_operator.sui.errors import RejectionKind
from atoma_operator.sui.gas import GasCoinManager, GasLease, Release
from atoma_operator.sui.types import ExecutionStatus, MoveCall, SharedObjectArg

STACK = 7
BUDGET = 50_000_000
T_SIGNED = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


class Recorder:
    """`record_intent` that notes how many executes had happened when it was called."""

    def __init__(self, gateway: FakeGateway) -> None:
        self.gateway = gateway
        self.intents: list[tuple[int, PendingTransaction]] = []

    async def __call__(self, intent: PendingTransaction) -> None:
        self.intents.append((self.gateway.executed_count, intent))


def settle_call(gw: FakeGateway, badge: str, stack: int = STACK) -> MoveCall:
    db = SharedObjectArg(oid(0xDB), 3, True)
    rnd = SharedObjectArg(calls.RANDOM_OBJECT_ID, 1, False)
    return calls.try_settle_stack(
        PACKAGE_ID, db, gw.objects[badge], stack, 100, b"\x01" * 32, b"\x02" * 32, rnd
    )


@pytest.fixture
def gw() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def coin(gw: FakeGateway) -> str:
    return gw.add_coin()


@pytest.fixture
def badge(gw: FakeGateway) -> str:
    return gw.add_badge(1).object_id


@pytest.fixture
def gas(gw: FakeGateway) -> GasCoinManager:
    return GasCoinManager(gw)


class Submitted:
    """What one `_submit` left behind: the step, the signed intent, the lease it used."""

    def __init__(self, step: StepResult, intent: PendingTransaction | None, lease: GasLease):
        self.step, self.intent, self.lease = step, intent, lease


async def _submit(
    gw: FakeGateway,
    gas: GasCoinManager,
    badge: str,
    coin: str | None,
    rec: RecordIntent,
    *,
    may_submit: Callable[[], bool] = lambda: True,
) -> Submitted:
    """Submit as a caller must: lease the coin, submit on it, then settle the gas the way
    the step says (`coin_release`); a step whose outcome is unknown keeps the lease."""
    async with gas.lease(coin, BUDGET) as lease:
        step, intent = await submit_new(
            settle_call(gw, badge),
            gateway=gw,
            lease=lease,
            gas_price=1_000,
            gas_budget=BUDGET,
            attempt=1,
            record_intent=rec,
            clock=lambda: T_SIGNED,
            may_submit=may_submit,
        )
        release = coin_release(step)
        if release is not None and intent is not None:
            gas.settle(intent.digest, lease.object_id, release)
        elif release is not None:  # refused before signing: the lease is not bound yet
            gas.release(lease, release)
    return Submitted(step, intent, lease)


async def _blocks(gas: GasCoinManager, coin: str) -> bool:
    """Whether leasing `coin` parks (someone holds it); decided without a timer: the
    in-memory chain answers at once, so an acquire either completes or parks."""
    assert gas.stats().waiting == 0
    task = asyncio.create_task(gas.acquire(coin))
    for _ in range(1_000):
        if task.done() or gas.stats().waiting:
            break
        await asyncio.sleep(0)
    else:
        raise AssertionError("the acquire neither completed nor parked")
    if task.done():
        gas.release(task.result(), Release.unused())
        return False
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
    return True


# --- submit_new ---------------------------------------------------------------------------------


async def test_simulated_abort_records_nothing_and_sends_nothing(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    gw.script(calls.TRY_SETTLE_STACK, STACK, simulate=[abort("ENodeNotSelectedForStack")])
    rec = Recorder(gw)
    done = await _submit(gw, gas, badge, coin, rec)
    assert isinstance(done.step, SimulatedAbort)
    assert done.step.outcome.abort_code == 312012023
    assert done.intent is None and done.lease.digest is None  # nothing signed for sending
    assert coin_release(done.step) == Release.unused()
    assert rec.intents == []
    assert gw.calls["execute"] == 0
    assert gas.stats().in_use == 0
    assert not await _blocks(gas, coin)  # the lease went back


async def test_success_records_intent_before_executing(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    rec = Recorder(gw)
    before = gw.objects[coin]
    done = await _submit(gw, gas, badge, coin, rec)
    assert isinstance(done.step, Executed)
    outcome = done.step.outcome
    assert outcome.succeeded
    [(executes_seen, intent)] = rec.intents
    assert executes_seen == 0
    assert done.intent == intent
    assert intent.digest == outcome.digest == done.lease.digest
    assert intent.gas_coin.to_ref() == before
    assert intent.attempt == 1
    assert intent.recorded_at == T_SIGNED
    assert [tx.tx_bytes_b64 for tx in gw.sent] == [intent.tx_bytes]
    assert outcome.gas_coin_after == gw.objects[coin]
    assert gw.objects[coin].version == before.version + 1
    assert coin_release(done.step) == Release.moved(gw.objects[coin], outcome.gas_used_mist)
    assert gas.stats().in_use == 0
    again = await gas.acquire(coin)
    assert again.ref == gw.objects[coin]  # the next transaction builds on the new version


async def test_execute_outage_keeps_the_lease_bound_to_the_digest(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    gw.script(calls.TRY_SETTLE_STACK, STACK, execute=[Unavailable()])
    rec = Recorder(gw)
    done = await _submit(gw, gas, badge, coin, rec)
    assert isinstance(done.step, Unknown)
    assert coin_release(done.step) is None  # outcome unknown: keep the coin
    [(_, intent)] = rec.intents
    held = gas.find(intent.digest)
    assert held is done.lease and not held.released
    assert await _blocks(gas, coin)  # nobody else may use that coin version
    # ... until resume learns the outcome: the same bytes are sent again and succeed.
    resumed = await resume(intent, gateway=gw)
    assert isinstance(resumed, Executed) and resumed.outcome.succeeded
    assert gw.executes[intent.digest] == 2
    release = coin_release(resumed)
    assert release is not None
    gas.settle(intent.digest, intent.gas_coin.object_id, release)
    assert held.released
    assert not await _blocks(gas, coin)


async def test_pooled_coin_outage_keeps_the_lease_too(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    gw.script(calls.TRY_SETTLE_STACK, STACK, execute=[Unavailable()])
    rec = Recorder(gw)
    done = await _submit(gw, gas, badge, None, rec)
    assert isinstance(done.step, Unknown)
    assert gas.stats().in_use == 1
    assert rec.intents[0][1].gas_coin.object_id == coin
    assert gas.find(rec.intents[0][1].digest) is done.lease


@pytest.mark.parametrize("kind", [RejectionKind.EQUIVOCATION, RejectionKind.LOCKED])
async def test_equivocation_refusal(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str, kind: RejectionKind
) -> None:
    gw.script(calls.TRY_SETTLE_STACK, STACK, execute=[Reject(kind)])
    done = await _submit(gw, gas, badge, coin, Recorder(gw))
    assert isinstance(done.step, Refused)
    assert done.step.equivocation is True
    assert coin_release(done.step) == Release.unknown()
    assert gas.find(gw.sent[0].digest) is None
    assert gas.stats().suspect == 1  # withheld until the chain shows it newer


async def test_other_refusal_is_not_equivocation(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    gw.script(calls.TRY_SETTLE_STACK, STACK, execute=[Reject(RejectionKind.INSUFFICIENT_GAS)])
    done = await _submit(gw, gas, badge, coin, Recorder(gw))
    assert isinstance(done.step, Refused) and not done.step.equivocation
    assert coin_release(done.step) == Release.reread()
    assert gas.stats().suspect == 0
    assert not await _blocks(gas, coin)


async def test_simulate_outage_is_unknown_and_frees_the_coin(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    gw.script(calls.TRY_SETTLE_STACK, STACK, simulate=[Unavailable()])
    rec = Recorder(gw)
    done = await _submit(gw, gas, badge, coin, rec)
    assert isinstance(done.step, Unknown)
    assert done.intent is None and done.lease.digest is None  # nothing signed to wait for
    assert rec.intents == [] and gw.calls["execute"] == 0
    assert not await _blocks(gas, coin)


@pytest.mark.parametrize(
    ("kind", "release", "suspect"),
    [
        (RejectionKind.LOCKED, Release.unknown(), 1),
        (RejectionKind.STALE_OBJECT, Release.reread(), 0),
    ],
)
async def test_refusal_at_simulation_says_what_became_of_the_coin(
    gw: FakeGateway,
    gas: GasCoinManager,
    badge: str,
    coin: str,
    kind: RejectionKind,
    release: Release,
    suspect: int,
) -> None:
    gw.script(calls.TRY_SETTLE_STACK, STACK, simulate=[Reject(kind)])
    rec = Recorder(gw)
    done = await _submit(gw, gas, badge, None, rec)
    assert isinstance(done.step, Refused)
    assert done.intent is None and rec.intents == [] and gw.calls["execute"] == 0
    assert coin_release(done.step) == release  # even though nothing was signed to send
    assert gas.stats().suspect == suspect


@pytest.mark.parametrize("error", [Conflict("changed"), NotFound("deleted")])
async def test_record_refused_is_not_recorded_and_sends_nothing(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str, error: Exception
) -> None:
    async def refuse(_: PendingTransaction) -> None:
        raise error

    done = await _submit(gw, gas, badge, coin, refuse)
    assert isinstance(done.step, NotRecorded)
    assert done.step.error is error
    assert done.intent is not None  # signed, so the lease was bound to it ...
    assert coin_release(done.step) == Release.unused()  # ... but the coin is untouched
    assert gw.calls["execute"] == 0
    assert gas.find(done.intent.digest) is None
    assert not await _blocks(gas, coin)


async def test_lost_leadership_sends_nothing_and_records_nothing(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    rec = Recorder(gw)
    done = await _submit(gw, gas, badge, coin, rec, may_submit=lambda: False)
    assert isinstance(done.step, Busy) and done.step.reason == "NotLeader"
    assert done.intent is None and done.lease.digest is None
    assert rec.intents == [] and gw.calls["execute"] == 0
    assert not await _blocks(gas, coin)


async def test_executed_abort_is_executed_not_simulated(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    gw.script(calls.TRY_SETTLE_STACK, STACK, execute=[Abort(312012019)])
    done = await _submit(gw, gas, badge, coin, Recorder(gw))
    assert isinstance(done.step, Executed)
    assert done.step.outcome.status is ExecutionStatus.MOVE_ABORT
    assert done.step.outcome.abort_code == 312012019
    assert coin_release(done.step) == Release.moved(
        gw.objects[coin], done.step.outcome.gas_used_mist
    )
    assert not await _blocks(gas, coin)  # effects known: the coin moved on and is free


# --- resume -----------------------------------------------------------------------------------


async def _recorded(gw: FakeGateway, badge: str, coin: str) -> PendingTransaction:
    """An intent as a crashed operator would have left it: signed, recorded, maybe sent."""
    tx = await gw.build_and_sign(
        settle_call(gw, badge), gas_coin=gw.objects[coin], gas_price=1_000, gas_budget=BUDGET
    )
    return PendingTransaction.from_signed(tx, attempt=1, recorded_at=datetime.now(UTC))


def _confirm(answer: bool) -> tuple[list[str], Callable[[str], bool]]:
    """A `confirm_expiry` that notes each digest it is asked about and gives `answer`."""
    asked: list[str] = []

    def confirm(digest: str) -> bool:
        asked.append(digest)
        return answer

    return asked, confirm


async def test_resume_known_digest_sends_nothing(gw: FakeGateway, badge: str, coin: str) -> None:
    intent = await _recorded(gw, badge, coin)
    await gw.execute(intent.to_signed())  # it ran before the crash
    result = await resume(intent, gateway=gw)
    assert isinstance(result, Executed) and result.outcome.digest == intent.digest
    assert gw.executes[intent.digest] == 1
    assert gw.lookups[intent.digest] == 1
    assert coin_release(result) == Release.moved(gw.objects[coin], GAS_USED)


async def test_resume_unknown_digest_resends_the_same_bytes(
    gw: FakeGateway, badge: str, coin: str
) -> None:
    intent = await _recorded(gw, badge, coin)
    built = len(gw.built)
    at_recorded: list[str] = []
    asked, confirm = _confirm(True)
    result = await resume(
        intent, gateway=gw, confirm_expiry=confirm, coin_at_recorded=at_recorded.append
    )
    assert isinstance(result, Executed) and result.outcome.succeeded
    [sent] = gw.sent
    assert sent.digest == intent.digest
    assert sent.tx_bytes_b64 == intent.tx_bytes
    assert list(sent.signatures) == intent.signatures
    assert len(gw.built) == built  # nothing rebuilt or re-signed
    assert at_recorded == [intent.digest]  # the coin still sat at the recorded version
    assert asked == []  # so expiry was never in question


async def test_resume_when_coin_moved_on_is_expired(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    intent = await _recorded(gw, badge, coin)
    moved = gw.bump(coin)  # another transaction used that coin version
    asked, confirm = _confirm(True)
    result = await resume(intent, gateway=gw, confirm_expiry=confirm)
    assert isinstance(result, Expired)
    assert coin in result.reason
    assert asked == [intent.digest]
    assert gw.lookups[intent.digest] == 2  # looked up again after seeing the coin move
    assert gw.calls["execute"] == 0
    release = coin_release(result)
    assert release == Release.reread()
    # recorded before a restart, so no lease here: settling tells the pool what it knows
    gas.settle(intent.digest, coin, release)
    lease = await gas.acquire(coin)  # the coin is free again, at its new version
    assert lease.ref == moved
    gas.release(lease, Release.unused())


async def test_resume_is_unknown_until_expiry_is_confirmed(
    gw: FakeGateway, badge: str, coin: str
) -> None:
    """A node behind a load balancer may show the coin moved by our own transaction yet
    not know that transaction: while `confirm_expiry` says no, the intent is kept."""
    intent = await _recorded(gw, badge, coin)
    await gw.execute(intent.to_signed())  # it did execute ...
    executed = gw.transactions.pop(intent.digest)  # ... but this node does not know it yet
    asked, confirm = _confirm(False)
    for _ in range(3):
        result = await resume(intent, gateway=gw, confirm_expiry=confirm)
        assert isinstance(result, Unknown)
        assert coin_release(result) is None  # keep the coin and the badge held
    assert asked == [intent.digest] * 3
    assert gw.executes[intent.digest] == 1  # never re-sent on a moved coin
    gw.transactions[intent.digest] = executed  # the node caught up
    result = await resume(intent, gateway=gw, confirm_expiry=confirm)
    assert isinstance(result, Executed) and result.outcome.digest == intent.digest
    assert len(asked) == 3
    assert gw.executes[intent.digest] == 1


async def test_resume_outage_is_unknown_and_keeps_the_intent(
    gw: FakeGateway, badge: str, coin: str
) -> None:
    intent = await _recorded(gw, badge, coin)
    gw.down.add("get_transaction")
    result = await resume(intent, gateway=gw)
    assert isinstance(result, Unknown)
    assert coin_release(result) is None  # the caller keeps its holds
    assert gw.calls["execute"] == 0
    gw.down.clear()  # next pass: the same intent is resumed
    resumed = await resume(intent, gateway=gw)
    assert isinstance(resumed, Executed) and resumed.outcome.digest == intent.digest
    assert gw.executes[intent.digest] == 1


async def test_resume_after_lost_answer_never_executes_twice(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    gw.script(calls.TRY_SETTLE_STACK, STACK, execute=[Unavailable(executed=True), Succeed()])
    rec = Recorder(gw)
    assert isinstance((await _submit(gw, gas, badge, coin, rec)).step, Unknown)
    intent = rec.intents[0][1]
    result = await resume(intent, gateway=gw)
    assert isinstance(result, Executed)
    assert gw.executes[intent.digest] == 1
    assert len(gw.transactions) == 1


async def test_record_failing_unknowably_keeps_the_coin_withheld(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    """A write that failed without a verdict may have landed: the coin version may now
    belong to the recorded digest, so it is not handed to another transaction."""
    tried: list[PendingTransaction] = []

    async def timeout(intent: PendingTransaction) -> None:
        tried.append(intent)
        raise TimeoutError("the status write timed out")

    with pytest.raises(TimeoutError):
        await _submit(gw, gas, badge, coin, timeout)
    assert gw.calls["execute"] == 0
    [intent] = tried
    held = gas.find(intent.digest)
    assert held is not None and not held.released
    assert await _blocks(gas, coin)


async def test_resume_against_a_lagging_node_is_unknown_not_expired(
    gw: FakeGateway, badge: str, coin: str
) -> None:
    """A node reporting an older coin version than recorded must not drop the intent,
    even where expiry would be confirmed."""
    gw.bump(coin)
    intent = await _recorded(gw, badge, coin)  # recorded at version 2
    lagging = intent.gas_coin.to_ref()
    gw.objects[coin] = type(lagging)(lagging.object_id, lagging.version - 1, "older")
    at_recorded: list[str] = []
    result = await resume(
        intent,
        gateway=gw,
        confirm_expiry=lambda _digest: True,
        coin_at_recorded=at_recorded.append,
    )
    assert isinstance(result, Unknown)
    assert coin_release(result) is None  # still held for that digest
    assert gw.calls["execute"] == 0
    assert at_recorded == []


async def test_resume_without_resend_only_looks_up(gw: FakeGateway, badge: str, coin: str) -> None:
    intent = await _recorded(gw, badge, coin)
    result = await resume(intent, gateway=gw, may_resend=False)
    assert isinstance(result, Unknown)
    assert coin_release(result) is None
    assert gw.calls["execute"] == 0
    assert gw.lookups[intent.digest] == 1
