"""The write-ahead submission protocol (`reconcile.submit`) against the in-memory chain."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from fakes import PACKAGE_ID, Abort, FakeGateway, Reject, Succeed, Unavailable, abort, oid

from atoma_operator.atoma import calls
from atoma_operator.kube import Conflict
from atoma_operator.reconcile.submit import (
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
from atoma_operator.resources.submission import PendingTransaction
from atoma_operator.sui.errors import RejectionKind
from atoma_operator.sui.gas import GasCoinManager
from atoma_operator.sui.types import ExecutionStatus, MoveCall, SharedObjectArg

STACK = 7
BUDGET = 50_000_000
BLOCKED = 0.05  # seconds a lease acquire must stay parked to count as "blocked"


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


async def _submit(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str | None, rec: RecordIntent
) -> StepResult:
    return await submit_new(
        settle_call(gw, badge),
        gateway=gw,
        gas=gas,
        named_gas=coin,
        gas_price=1_000,
        gas_budget=BUDGET,
        attempt=1,
        record_intent=rec,
    )


async def _blocks(gas: GasCoinManager, coin: str) -> bool:
    """Whether leasing `coin` stays parked (the lease is held by someone)."""
    try:
        lease = await asyncio.wait_for(gas.acquire(coin), BLOCKED)
    except TimeoutError:
        return True
    gas.release(lease, None)
    return False


# --- submit_new ---------------------------------------------------------------------------------


async def test_simulated_abort_records_nothing_and_sends_nothing(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    gw.script(calls.TRY_SETTLE_STACK, STACK, simulate=[abort("ENodeNotSelectedForStack")])
    rec = Recorder(gw)
    result = await _submit(gw, gas, badge, coin, rec)
    assert isinstance(result, SimulatedAbort)
    assert result.outcome.abort_code == 312012023
    assert rec.intents == []
    assert gw.calls["execute"] == 0
    assert gas.stats().in_use == 0
    assert not await _blocks(gas, coin)  # the lease went back


async def test_success_records_intent_before_executing(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    rec = Recorder(gw)
    before = gw.objects[coin]
    result = await _submit(gw, gas, badge, coin, rec)
    assert isinstance(result, Executed)
    assert result.outcome.succeeded
    [(executes_seen, intent)] = rec.intents
    assert executes_seen == 0
    assert intent.digest == result.outcome.digest
    assert intent.gas_coin.to_ref() == before
    assert intent.attempt == 1
    assert [tx.tx_bytes_b64 for tx in gw.sent] == [intent.tx_bytes]
    assert result.outcome.gas_coin_after == gw.objects[coin]
    assert gw.objects[coin].version == before.version + 1
    assert gas.stats().in_use == 0


async def test_execute_outage_keeps_the_lease_bound_to_the_digest(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    gw.script(calls.TRY_SETTLE_STACK, STACK, execute=[Unavailable()])
    rec = Recorder(gw)
    result = await _submit(gw, gas, badge, coin, rec)
    assert isinstance(result, Unknown)
    [(_, intent)] = rec.intents
    held = gas.find(intent.digest)
    assert held is not None and not held.released
    assert await _blocks(gas, coin)  # nobody else may use that coin version
    # ... until resume learns the outcome: the same bytes are sent again and succeed.
    resumed = await resume(intent, gateway=gw, gas=gas)
    assert isinstance(resumed, Executed) and resumed.outcome.succeeded
    assert gw.executes[intent.digest] == 2
    assert not await _blocks(gas, coin)


async def test_pooled_coin_outage_keeps_the_lease_too(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    gw.script(calls.TRY_SETTLE_STACK, STACK, execute=[Unavailable()])
    rec = Recorder(gw)
    result = await _submit(gw, gas, badge, None, rec)
    assert isinstance(result, Unknown)
    assert gas.stats().in_use == 1
    assert rec.intents[0][1].gas_coin.object_id == coin


@pytest.mark.parametrize("kind", [RejectionKind.EQUIVOCATION, RejectionKind.LOCKED])
async def test_equivocation_refusal(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str, kind: RejectionKind
) -> None:
    gw.script(calls.TRY_SETTLE_STACK, STACK, execute=[Reject(kind)])
    result = await _submit(gw, gas, badge, coin, Recorder(gw))
    assert isinstance(result, Refused)
    assert result.equivocation is True
    assert gas.find(gw.sent[0].digest) is None
    assert gas.stats().suspect == 1  # withheld until the chain shows it newer


async def test_other_refusal_is_not_equivocation(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    gw.script(calls.TRY_SETTLE_STACK, STACK, execute=[Reject(RejectionKind.INSUFFICIENT_GAS)])
    result = await _submit(gw, gas, badge, coin, Recorder(gw))
    assert isinstance(result, Refused) and not result.equivocation
    assert gas.stats().suspect == 0
    assert not await _blocks(gas, coin)


async def test_simulate_outage_is_unknown_and_frees_the_coin(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    gw.script(calls.TRY_SETTLE_STACK, STACK, simulate=[Unavailable()])
    rec = Recorder(gw)
    result = await _submit(gw, gas, badge, coin, rec)
    assert isinstance(result, Unknown)
    assert rec.intents == [] and gw.calls["execute"] == 0
    assert not await _blocks(gas, coin)


async def test_record_conflict_releases_the_lease_and_sends_nothing(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    async def conflict(_: PendingTransaction) -> None:
        raise Conflict("changed")

    with pytest.raises(Conflict):
        await _submit(gw, gas, badge, coin, conflict)
    assert gw.calls["execute"] == 0
    assert not await _blocks(gas, coin)


async def test_executed_abort_is_executed_not_simulated(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    gw.script(calls.TRY_SETTLE_STACK, STACK, execute=[Abort(312012019)])
    result = await _submit(gw, gas, badge, coin, Recorder(gw))
    assert isinstance(result, Executed)
    assert result.outcome.status is ExecutionStatus.MOVE_ABORT
    assert result.outcome.abort_code == 312012019
    assert not await _blocks(gas, coin)  # effects known: the coin moved on and is free


# --- resume -----------------------------------------------------------------------------------


async def _recorded(gw: FakeGateway, badge: str, coin: str) -> PendingTransaction:
    """An intent as a crashed operator would have left it: signed, recorded, maybe sent."""
    tx = await gw.build_and_sign(
        settle_call(gw, badge), gas_coin=gw.objects[coin], gas_price=1_000, gas_budget=BUDGET
    )
    return PendingTransaction.from_signed(tx, attempt=1, recorded_at=datetime.now(UTC))


async def test_resume_known_digest_sends_nothing(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    intent = await _recorded(gw, badge, coin)
    await gw.execute(intent.to_signed())  # it ran before the crash
    result = await resume(intent, gateway=gw, gas=gas)
    assert isinstance(result, Executed) and result.outcome.digest == intent.digest
    assert gw.executes[intent.digest] == 1
    assert gw.lookups[intent.digest] == 1
    assert gas.stats().in_use == 0


async def test_resume_unknown_digest_resends_the_same_bytes(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    intent = await _recorded(gw, badge, coin)
    built = len(gw.built)
    result = await resume(intent, gateway=gw, gas=gas)
    assert isinstance(result, Executed) and result.outcome.succeeded
    [sent] = gw.sent
    assert sent.digest == intent.digest
    assert sent.tx_bytes_b64 == intent.tx_bytes
    assert list(sent.signatures) == intent.signatures
    assert len(gw.built) == built  # nothing rebuilt or re-signed
    assert gas.stats().in_use == 0


async def test_resume_when_coin_moved_on_is_expired(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    intent = await _recorded(gw, badge, coin)
    moved = gw.bump(coin)  # another transaction used that coin version
    result = await resume(intent, gateway=gw, gas=gas)
    assert isinstance(result, Expired)
    assert coin in result.reason
    assert gw.calls["execute"] == 0
    lease = await asyncio.wait_for(gas.acquire(coin), 1.0)  # the coin is free again
    assert lease.ref == moved
    gas.release(lease, None)


async def test_resume_outage_is_unknown_and_keeps_the_lease(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    intent = await _recorded(gw, badge, coin)
    gw.down.add("get_transaction")
    result = await resume(intent, gateway=gw, gas=gas)
    assert isinstance(result, Unknown)
    assert gw.calls["execute"] == 0
    assert gas.find(intent.digest) is not None
    assert await _blocks(gas, coin)
    gw.down.clear()  # next pass: the same lease is found by digest, not adopted again
    assert isinstance(await resume(intent, gateway=gw, gas=gas), Executed)
    assert gas.stats().in_use == 0


async def test_resume_after_lost_answer_never_executes_twice(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    gw.script(calls.TRY_SETTLE_STACK, STACK, execute=[Unavailable(executed=True), Succeed()])
    rec = Recorder(gw)
    assert isinstance(await _submit(gw, gas, badge, coin, rec), Unknown)
    intent = rec.intents[0][1]
    result = await resume(intent, gateway=gw, gas=gas)
    assert isinstance(result, Executed)
    assert gw.executes[intent.digest] == 1
    assert len(gw.transactions) == 1


async def test_record_failing_unknowably_keeps_the_coin_withheld(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    """A write that failed without a verdict may have landed: the coin version may now
    belong to the recorded digest, so it is not handed to another transaction."""

    async def timeout(_: PendingTransaction) -> None:
        raise TimeoutError("the status write timed out")

    with pytest.raises(TimeoutError):
        await _submit(gw, gas, badge, coin, timeout)
    assert gw.calls["execute"] == 0
    assert await _blocks(gas, coin)


async def test_resume_against_a_lagging_node_is_unknown_not_expired(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    """A node reporting an older coin version than recorded must not drop the intent."""
    gw.bump(coin)
    intent = await _recorded(gw, badge, coin)  # recorded at version 2
    lagging = intent.gas_coin.to_ref()
    gw.objects[coin] = type(lagging)(lagging.object_id, lagging.version - 1, "older")
    result = await resume(intent, gateway=gw, gas=gas)
    assert isinstance(result, Unknown)
    assert gw.calls["execute"] == 0
    assert gas.find(intent.digest) is not None  # still held for that digest


async def test_resume_without_resend_only_looks_up(
    gw: FakeGateway, gas: GasCoinManager, badge: str, coin: str
) -> None:
    intent = await _recorded(gw, badge, coin)
    result = await resume(intent, gateway=gw, gas=gas, may_resend=False)
    assert isinstance(result, Unknown)
    assert gw.calls["execute"] == 0
    assert gw.lookups[intent.digest] == 1
