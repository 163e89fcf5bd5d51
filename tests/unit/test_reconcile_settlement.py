"""The StackSettlement state machine (`reconcile.settlement`) against the in-memory chain."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fakes import (
    DB_ID,
    FakeClock,
    FakeGateway,
    FakeValues,
    Reject,
    StatusLog,
    Unavailable,
    abort,
    make_context,
    make_ticket,
    oid,
)

from atoma_operator.atoma import calls
from atoma_operator.atoma.calls import TRY_SETTLE_STACK
from atoma_operator.reconcile.conditions import condition_status
from atoma_operator.reconcile.context import ReconcileContext
from atoma_operator.reconcile.holds import HoldBook
from atoma_operator.reconcile.settlement import (
    PassResult,
    apply_ticket,
    conclude,
    reconcile_settlement,
)
from atoma_operator.resources.proofs import KeySelector, ProofValueSource, StackProof
from atoma_operator.resources.stack_settlement import (
    ClaimedAttestationStatus,
    SettlementPhase,
    StackSettlementSpec,
    StackSettlementStackStatus,
    StackSettlementStatus,
)
from atoma_operator.resources.submission import PendingTransaction
from atoma_operator.settings import NodeBadge
from atoma_operator.sui.errors import RejectionKind
from atoma_operator.sui.types import MoveCall, SharedObjectArg, SignedTransaction, TxOutcome

NS = "team-a"
TOTAL_HASH = "ab" * 32 + "cd" * 32  # two requests
PASS_DEADLINE = 2.0  # seconds: a pass over the in-memory chain takes milliseconds


def spec_for(
    stacks: list[int], *, node: int | None = None, gas: str | None = None, **proofs: StackProof
) -> StackSettlementSpec:
    return StackSettlementSpec(
        stack_small_ids=stacks,
        node_small_id=node,
        gas=gas,
        num_claimed_compute_units=100,
        proofs=[
            proofs.get(f"s{s}") or StackProof(stack_small_id=s, total_hash=TOTAL_HASH)
            for s in stacks
        ],
    )


class World:
    """One resource being reconciled: the chain, the context, the status and its writes."""

    def __init__(self, *, coins: int = 3, badges: tuple[int, ...] = (1,), **settings: Any) -> None:
        self.gw = FakeGateway()
        self.coins = [self.gw.add_coin() for _ in range(coins)]
        self.badges: list[NodeBadge] = [self.gw.add_badge(n) for n in badges]
        self.clock = FakeClock()
        self.values = FakeValues()
        self.ctx: ReconcileContext = make_context(
            self.gw, badges=self.badges, clock=self.clock, values=self.values, **settings
        )
        self.status = StackSettlementStatus()
        self.log = StatusLog(self.gw)
        self.deadline = PASS_DEADLINE

    async def run(self, spec: StackSettlementSpec, generation: int = 1) -> PassResult:
        result = await asyncio.wait_for(
            reconcile_settlement(
                namespace=NS,
                name="s",
                generation=generation,
                spec=spec,
                status=self.status,
                ctx=self.ctx,
                write_status=self.log,
            ),
            self.deadline,
        )
        conclude(result.status, generation)
        return result

    def entry(self, sid: int) -> StackSettlementStackStatus:
        entry = self.status.stack(sid)
        assert entry is not None
        return entry

    def conditions(self) -> list[dict[str, Any]]:
        return [c.to_k8s() for c in self.status.conditions]

    def stalled_status(self) -> str | None:
        return condition_status(self.conditions(), "Stalled")


async def test_three_stacks_one_terminal_abort_one_in_flight() -> None:
    w = World()
    w.gw.script(TRY_SETTLE_STACK, 2, simulate=[abort("ENodeNotSelectedForStack")])
    w.gw.script(TRY_SETTLE_STACK, 3, execute=[Unavailable()])
    spec = spec_for([1, 2, 3])

    first = await w.run(spec)
    assert w.entry(1).phase is SettlementPhase.SETTLING
    assert w.entry(2).phase is SettlementPhase.FAILED
    assert "ENodeNotSelectedForStack" in (w.entry(2).last_error or "")
    assert w.entry(2).next_retry_time is None  # terminal: no retry scheduled
    assert w.entry(3).phase is SettlementPhase.SUBMITTING
    assert w.entry(3).pending is not None
    assert w.gw.sent_for(TRY_SETTLE_STACK, 2) == []  # the abort cost no gas
    # Stack 3 is still in flight: not Stalled yet, and the pass asks to come back.
    conds = w.conditions()
    assert condition_status(conds, "Stalled") == "False"
    assert condition_status(conds, "Reconciling") == "True"
    assert first.retry_after is not None

    second = await w.run(spec)
    assert w.entry(3).phase is SettlementPhase.SETTLING
    assert w.entry(3).pending is None
    [resent, again] = w.gw.sent_for(TRY_SETTLE_STACK, 3)
    assert resent.tx_bytes_b64 == again.tx_bytes_b64  # resumed, not rebuilt
    conds = w.conditions()
    assert condition_status(conds, "Stalled") == "True"
    assert condition_status(conds, "Ready") == "False"
    stalled = next(c for c in conds if c["type"] == "Stalled")
    assert stalled["reason"] == "ENodeNotSelectedForStack"
    assert second.retry_after is None
    assert w.status.tx_digests == [w.entry(1).tx_digest, w.entry(3).tx_digest]


async def test_intent_is_written_before_the_transaction_is_sent() -> None:
    w = World(coins=1)
    await w.run(spec_for([4]))
    assert w.entry(4).phase is SettlementPhase.SETTLING
    assert w.log.writes, "the intent was never written"
    executed_then, body = w.log.writes[0]
    assert executed_then == 0
    [stack] = body["stacks"]
    assert stack["phase"] == "Submitting"
    assert stack["pending"]["digest"] == w.entry(4).tx_digest


async def test_existing_ticket_means_nothing_is_sent() -> None:
    """No ticket read up front (it costs every new stack a read): the simulation aborts
    with EStackInSettlementDispute (a ticket exists): nothing recorded or executed."""
    w = World()
    ticket = make_ticket(
        5, selected_node_id=1, num_claimed_compute_units=77, requested=[3, 4], attested=[3]
    )
    w.gw.set_ticket(ticket)
    result = await w.run(spec_for([5]))
    assert w.gw.calls["simulate"] == 1 and w.gw.calls["execute"] == 0
    assert w.log.writes == [], "no intent: nothing to record"
    assert [(n.type, n.reason) for n in result.notices] == [("Normal", "AlreadySettled")]
    assert "EStackInSettlementDispute" in result.notices[0].message
    e = w.entry(5)
    assert e.phase is SettlementPhase.SETTLING
    assert e.num_claimed_compute_units == 77
    assert e.requested_attestation_nodes == [3, 4]
    assert (e.received_attestations, e.required_attestations) == (1, 2)
    assert e.dispute_settled_at_epoch == ticket.dispute_settled_at_epoch
    assert e.attestation_status is ClaimedAttestationStatus.PENDING
    assert e.tx_digest is None
    assert w.status.tx_digests == []


def _from_configmap(sid: int) -> StackProof:
    ref = KeySelector(name="proofs", key=f"stack-{sid}")
    return StackProof(stack_small_id=sid, value_from=ProofValueSource(config_map_key_ref=ref))


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (b"zz" * 32, "not hex"),
        (b"ab" * 33, "not a multiple of 32"),
    ],
    ids=["bad-hex", "not-multiple-of-32"],
)
async def test_bad_proof_input_fails_the_stack_and_sends_nothing(
    value: bytes | None, detail: str
) -> None:
    w = World()
    if value is not None:
        w.values.values[(NS, "ConfigMap", "proofs", "stack-6")] = value
    await w.run(spec_for([6], s6=_from_configmap(6)))
    e = w.entry(6)
    assert e.phase is SettlementPhase.FAILED
    assert (e.last_error or "").startswith("Failed to get stack total hash for stack 6")
    assert detail in (e.last_error or "")
    assert w.values.reads == [(NS, "ConfigMap", "proofs", "stack-6")]
    assert w.gw.calls["build_and_sign"] == 0 and w.gw.calls["execute"] == 0
    stalled = next(c for c in w.conditions() if c["type"] == "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "InvalidProofInput")


def _from_secret(sid: int) -> StackProof:
    ref = KeySelector(name="proofs", key=f"stack-{sid}")
    return StackProof(stack_small_id=sid, value_from=ProofValueSource(secret_key_ref=ref))


def _condition(w: World, type_: str) -> dict[str, Any]:
    return next(c for c in w.conditions() if c["type"] == type_)


@pytest.mark.parametrize("source", [_from_configmap, _from_secret], ids=["configmap", "secret"])
async def test_missing_proof_input_waits_then_is_used_when_it_appears(source: Any) -> None:
    w = World()
    kind = "ConfigMap" if source is _from_configmap else "Secret"
    spec = spec_for([6, 7], s6=source(6))
    first = await w.run(spec)
    e = w.entry(6)
    assert e.phase is SettlementPhase.PENDING
    assert e.reason == "WaitingForProofInput" and e.waiting_since == w.clock.now
    assert w.entry(7).phase is SettlementPhase.SETTLING  # the other stack is not held up
    reconciling = _condition(w, "Reconciling")
    assert (reconciling["status"], reconciling["reason"]) == ("True", "WaitingForProofInput")
    assert _condition(w, "Stalled")["status"] == "False"
    assert first.retry_after is not None and 0 < first.retry_after <= 30
    assert w.gw.calls["execute"] == 1  # stack 7 only
    if kind == "Secret":
        assert "not found or not permitted" in (e.last_error or "")
    # Re-checked on backoff: still missing, still waiting, the wait's start unchanged.
    started = e.waiting_since
    w.clock.advance(first.retry_after)
    await w.run(spec)
    assert w.entry(6).phase is SettlementPhase.PENDING and w.entry(6).waiting_since == started
    # It appears: the next pass uses it.
    w.values.values[(NS, kind, "proofs", "stack-6")] = TOTAL_HASH.encode()
    w.clock.advance(30)
    await w.run(spec)
    assert w.entry(6).phase is SettlementPhase.SETTLING
    assert w.gw.calls["execute"] == 2


async def test_missing_proof_input_fails_after_the_deadline_even_across_a_restart() -> None:
    w = World(proof_input_wait_seconds=120.0)
    spec = spec_for([6], s6=_from_configmap(6))
    await w.run(spec)
    assert w.entry(6).phase is SettlementPhase.PENDING
    # A restarted operator starts from the status as stored in the apiserver.
    w.status = StackSettlementStatus.model_validate(w.status.to_k8s())
    w.clock.advance(119)
    await w.run(spec)
    assert w.entry(6).phase is SettlementPhase.PENDING
    w.clock.advance(1)
    result = await w.run(spec)
    e = w.entry(6)
    assert e.phase is SettlementPhase.FAILED and e.reason == "InvalidProofInput"
    assert "waited 120 s" in (e.last_error or "")
    stalled = _condition(w, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "InvalidProofInput")
    assert result.retry_after is None
    assert w.gw.calls["build_and_sign"] == 0


@pytest.mark.parametrize(
    "value", [b"zz" * 32, b"ab" * 33, b"\xff\xfe"], ids=["bad-hex", "bad-length", "not-ascii"]
)
async def test_a_bad_secret_value_is_not_described(value: bytes) -> None:
    w = World()
    w.values.values[(NS, "Secret", "proofs", "stack-6")] = value
    await w.run(spec_for([6], s6=_from_secret(6)))
    e = w.entry(6)
    assert e.phase is SettlementPhase.FAILED and e.reason == "InvalidProofInput"
    message = e.last_error or ""
    assert message.endswith("Secret proofs key stack-6 does not hold a valid total hash")
    for detail in ("hex", "bytes", "32", "length", str(len(value))):
        assert detail not in message.removeprefix("Failed to get stack total hash for stack 6")


async def test_proof_from_configmap_is_used() -> None:
    w = World()
    w.values.values[(NS, "ConfigMap", "proofs", "stack-6")] = TOTAL_HASH.encode()
    await w.run(spec_for([6], s6=_from_configmap(6)))
    assert w.entry(6).phase is SettlementPhase.SETTLING


async def test_retryable_abort_backs_off_then_retries() -> None:
    w = World()
    w.gw.script(TRY_SETTLE_STACK, 8, simulate=[abort("ENotEnoughEpochsPassed")])
    spec = spec_for([8])

    first = await w.run(spec)
    e = w.entry(8)
    assert e.phase is SettlementPhase.PENDING
    assert e.attempts == 1
    assert "ENotEnoughEpochsPassed" in (e.last_error or "")
    assert e.next_retry_time is not None and e.next_retry_time > w.clock.now
    wait = (e.next_retry_time - w.clock.now).total_seconds()
    assert first.retry_after == pytest.approx(wait)
    conds = w.conditions()
    assert condition_status(conds, "Reconciling") == "True"
    assert condition_status(conds, "Stalled") == "False"

    w.clock.advance(wait / 2)  # too early: nothing is built, simulated or sent
    simulated = w.gw.calls["simulate"]
    await w.run(spec)
    assert w.gw.calls["simulate"] == simulated
    assert w.gw.calls["build_and_sign"] == 1
    assert w.entry(8).attempts == 1

    w.clock.advance(wait)  # due now
    last = await w.run(spec)
    assert w.entry(8).phase is SettlementPhase.SETTLING
    assert w.entry(8).attempts == 2
    assert w.entry(8).last_error is None
    assert last.retry_after is None


async def test_pending_intent_is_resumed_not_rebuilt() -> None:
    w = World()
    tx = await w.gw.build_and_sign(
        _call_for(w, 9), gas_coin=w.gw.objects[w.coins[0]], gas_price=1_000, gas_budget=50_000_000
    )
    built = w.gw.calls["build_and_sign"]
    w.status.stacks = [
        StackSettlementStackStatus(
            stack_small_id=9,
            phase=SettlementPhase.SUBMITTING,
            attempts=1,
            pending=PendingTransaction.from_signed(tx, attempt=1, recorded_at=w.clock.now),
        )
    ]
    await w.run(spec_for([9]))
    assert w.gw.calls["build_and_sign"] == built
    assert w.gw.calls["simulate"] == 0
    assert [s.digest for s in w.gw.sent] == [tx.digest]
    assert w.entry(9).phase is SettlementPhase.SETTLING
    assert w.entry(9).tx_digest == tx.digest
    assert w.entry(9).pending is None


def _call_for(w: World, sid: int) -> MoveCall:
    return calls.try_settle_stack(
        w.ctx.package_id,
        SharedObjectArg(DB_ID, 3, True),
        w.gw.objects[w.badges[0].object_id],
        sid,
        100,
        b"\x01" * 32,
        b"\x02" * 32,
        SharedObjectArg(calls.RANDOM_OBJECT_ID, 3, False),
    )


@pytest.mark.parametrize(
    ("badges", "node", "needle"),
    [
        ((1, 2), None, "spec.nodeSmallId is required"),
        ((1,), 4, "no badge for node 4"),
        ((), None, "holds no node badge"),
    ],
    ids=["several-badges-no-node", "unknown-node", "no-badges"],
)
async def test_badge_problems_fail_every_stack(
    badges: tuple[int, ...], node: int | None, needle: str
) -> None:
    w = World(badges=badges)
    result = await w.run(spec_for([1, 2], node=node))
    for sid in (1, 2):
        e = w.entry(sid)
        assert e.phase is SettlementPhase.FAILED
        assert needle in (e.last_error or "")
    assert w.gw.calls["build_and_sign"] == 0
    assert result.retry_after is None
    assert any(needle in n.message for n in result.notices)
    stalled = next(c for c in w.conditions() if c["type"] == "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "NoBadge")


async def test_named_badge_among_several_is_used() -> None:
    w = World(badges=(1, 2))
    await w.run(spec_for([3], node=2))
    assert w.entry(3).phase is SettlementPhase.SETTLING
    assert w.entry(3).selected_node_id == 2  # the model makes the settling badge the selected node


async def test_tx_digests_follow_spec_order_not_execution_order() -> None:
    w = World()
    w.gw.script(TRY_SETTLE_STACK, 30, simulate=[abort("ENotEnoughEpochsPassed")])
    spec = spec_for([30, 10, 20])
    first = await w.run(spec)
    assert first.retry_after is not None
    w.clock.advance(first.retry_after)
    await w.run(spec)  # stack 30 executes last
    assert w.gw.unit_of(w.gw.sent[-1].digest) == (TRY_SETTLE_STACK, 30)
    digests = [w.entry(s).tx_digest for s in (30, 10, 20)]
    assert all(digests)
    assert w.status.tx_digests == digests
    assert [s.stack_small_id for s in w.status.stacks] == [30, 10, 20]


async def test_ticket_appearing_after_the_simulation_is_read_not_failed() -> None:
    """Another operator settles the stack between our simulation and our execution: our
    transaction aborts with EStackInSettlementDispute; the ticket is read, not failed."""
    w = World()
    ticket = make_ticket(11, num_claimed_compute_units=55)
    gw = w.gw
    simulate = gw.simulate

    async def racing_simulate(tx: SignedTransaction) -> TxOutcome:
        outcome = await simulate(tx)
        gw.set_ticket(ticket)  # settled by someone else right after our simulation
        return outcome

    gw.simulate = racing_simulate  # type: ignore[method-assign]
    result = await w.run(spec_for([11]))
    e = w.entry(11)
    assert w.gw.calls["simulate"] == 1
    assert w.gw.calls["execute"] == 1  # executed, aborted: the ticket was there first
    assert e.phase is SettlementPhase.SETTLING
    assert e.num_claimed_compute_units == 55
    assert e.tx_digest is None and len(e.failed_tx_digests) == 1
    assert e.reason is None and e.last_error is None
    assert [n.reason for n in result.notices] == ["AlreadySettled"]


async def test_one_named_coin_with_an_outage_does_not_hang_the_pass() -> None:
    """An unknown outcome keeps its coin; a sibling waits a bounded time, then waits its
    turn: no backoff in status (no write per try), woken when the coin or badge frees."""
    w = World(coins=1, gas_wait_seconds=0.05)
    w.gw.script(TRY_SETTLE_STACK, 1, execute=[Unavailable()])
    w.deadline = 0.3
    await w.run(spec_for([1, 2], gas=w.coins[0]))
    assert w.entry(1).pending is not None
    waiting = w.entry(2)
    assert waiting.phase is SettlementPhase.PENDING
    assert waiting.reason is None and waiting.last_error is None  # status not written
    assert waiting.next_retry_time is None and waiting.attempts == 0
    assert waiting.waits_for  # what the controller parks the resource on


async def test_badge_version_of_an_unknown_transaction_is_not_reused() -> None:
    """While stack 30's outcome is unknown its badge version is held: stack 10 waits, and
    is built only after 30 resolved, on the badge's next version."""
    w = World()
    w.gw.script(TRY_SETTLE_STACK, 30, execute=[Unavailable()])
    await w.run(spec_for([30, 10]))
    pending = w.entry(30).pending
    assert pending is not None
    assert [tx.digest for tx in w.gw.sent if tx.digest != pending.digest] == []
    assert w.entry(10).waits_for and w.entry(10).pending is None  # waits its turn
    w.clock.advance(3600)
    await w.run(spec_for([30, 10]))  # 30 resumes (same bytes) and resolves
    w.clock.advance(3600)
    await w.run(spec_for([30, 10]))
    locked = set(w.gw.owned_of(pending.digest))
    others = [tx.digest for tx in w.gw.sent if tx.digest != pending.digest]
    assert others, "stack 10 was never sent"
    for digest in others:
        assert locked.isdisjoint(w.gw.owned_of(digest)), "badge version used twice"


async def _record_then_move_the_coin(w: World) -> SignedTransaction:
    """Stack 9's intent as a restart finds it, its gas coin since moved on by another
    transaction: the recorded transaction can never run."""
    old = await w.gw.build_and_sign(
        _call_for(w, 9), gas_coin=w.gw.objects[w.coins[0]], gas_price=1_000, gas_budget=50_000_000
    )
    w.status.stacks = [
        StackSettlementStackStatus(
            stack_small_id=9,
            phase=SettlementPhase.SUBMITTING,
            attempts=1,
            pending=PendingTransaction.from_signed(old, attempt=1, recorded_at=w.clock.now),
        )
    ]
    w.gw.bump(w.coins[0])
    return old


async def test_expired_intent_is_rebuilt_never_resent() -> None:
    """Expiry needs `expiry_confirmations` lookups (default 3) spanning
    `expiry_window_seconds` (default 20): until both hold the intent is kept, since a
    lagging node can miss an executed transaction for a moment."""
    w = World(coins=1)
    # The hold book counts the evidence on the test's clock (time.monotonic by default).
    w.ctx.holds = HoldBook(clock=lambda: w.clock.now.timestamp())
    settings = w.ctx.settings
    assert (settings.expiry_confirmations, settings.expiry_window_seconds) == (3, 20.0)
    old = await _record_then_move_the_coin(w)
    start = w.clock.now
    lookups: list[float] = []  # seconds since the first lookup, one per pass
    while True:
        lookups.append((w.clock.now - start).total_seconds())
        result = await w.run(spec_for([9]))
        assert w.gw.sent == []
        assert result.retry_after is not None
        if w.entry(9).pending is None:
            break
        assert w.entry(9).phase is SettlementPhase.SUBMITTING  # kept while unconfirmed
        assert len(lookups) < 10, "the intent never expired"
        w.clock.advance(result.retry_after)
    # expired at the first lookup where both the count and the window were reached
    assert len(lookups) >= 3 and lookups[-1] >= 20.0
    assert len(lookups[:-1]) < 3 or lookups[-2] < 20.0
    assert w.gw.lookups[old.digest] == 2 * len(lookups)  # before and after the coin read
    assert w.entry(9).phase is SettlementPhase.PENDING
    await w.run(spec_for([9]))
    e = w.entry(9)
    assert e.phase is SettlementPhase.SETTLING
    assert e.attempts == 2
    assert e.tx_digest is not None and e.tx_digest != old.digest
    assert w.gw.executes[old.digest] == 0


async def test_expired_intent_with_one_confirmation_rebuilds_on_the_next_pass() -> None:
    w = World(coins=1, expiry_confirmations=1, expiry_window_seconds=0)
    old = await _record_then_move_the_coin(w)
    first = await w.run(spec_for([9]))
    assert w.entry(9).phase is SettlementPhase.PENDING and w.entry(9).pending is None
    assert w.gw.sent == []
    assert first.retry_after is not None
    await w.run(spec_for([9]))
    e = w.entry(9)
    assert e.phase is SettlementPhase.SETTLING
    assert e.attempts == 2
    assert e.tx_digest is not None and e.tx_digest != old.digest
    assert w.gw.executes[old.digest] == 0


async def test_coin_locked_at_simulation_is_withheld() -> None:
    """A node that refuses at simulation because the gas coin is locked (equivocation)
    leaves the coin tied up: like the same refusal at execution, it must be withheld as
    suspect, not handed straight to the next transaction (`coin_release(Refused)`)."""
    w = World(coins=1)
    w.gw.script(TRY_SETTLE_STACK, 1, simulate=[Reject(RejectionKind.LOCKED)])
    await w.run(spec_for([1]))
    e = w.entry(1)
    assert e.reason == "Equivocation" and e.pending is None
    assert w.gw.sent == []
    assert w.ctx.gas.stats().suspect == 1, (
        "a gas coin refused as locked at simulation went back to the pool as unused: "
        "run_unit settles coin_release(step) only for steps with a signed intent"
    )


async def test_coin_stale_at_simulation_is_reread_before_reuse() -> None:
    """A node that refuses at simulation because our gas coin reference is stale: the
    next attempt must build on the coin's current version, not on the same stale one
    (the real node would refuse that one at simulation again, pass after pass)."""
    w = World(coins=1)
    await w.ctx.gas.refresh()
    current = w.gw.bump(w.coins[0])  # another tool used the coin since the pool loaded it
    w.gw.script(TRY_SETTLE_STACK, 1, simulate=[Reject(RejectionKind.STALE_OBJECT)])
    result = await w.run(spec_for([1]))
    assert w.entry(1).reason == "TransactionRefused" and w.gw.sent == []
    assert result.retry_after is not None
    w.clock.advance(result.retry_after)
    await w.run(spec_for([1]))
    built_on = [tx.gas_coin for tx in w.gw.sent]
    assert built_on[:1] == [current], (
        f"the retry was built on gas coin version {built_on[0].version if built_on else '-'}"
        f" after a stale-object refusal at simulation; current is {current.version}"
    )
    assert w.entry(1).phase is SettlementPhase.SETTLING


async def test_chain_outage_before_sending_is_retried_not_failed() -> None:
    w = World()
    w.gw.down.add("get_object_json")  # tickets and AtomaDb cannot be read
    result = await w.run(spec_for([1]))
    e = w.entry(1)
    assert e.phase is SettlementPhase.PENDING
    assert e.reason == "ChainUnavailable"
    assert e.next_retry_time is not None
    assert result.retry_after is not None
    assert w.gw.calls["build_and_sign"] == 0
    assert w.stalled_status() == "False"
    w.gw.down.clear()
    w.clock.advance(result.retry_after)
    await w.run(spec_for([1]))
    assert w.entry(1).phase is SettlementPhase.SETTLING


@pytest.mark.parametrize("named", [True, False], ids=["missing-named-coin", "empty-wallet"])
async def test_gas_problems_are_recorded_not_raised(named: bool) -> None:
    w = World(coins=0)
    result = await w.run(spec_for([1, 2], gas=oid(0xDEAD) if named else None))
    for sid in (1, 2):
        e = w.entry(sid)
        assert e.phase is SettlementPhase.PENDING
        assert e.reason is not None and "gas" in (e.last_error or "").lower()
    assert result.retry_after is not None


# --- apply_ticket (the follower's path) ---------------------------------------------------------


def test_apply_ticket_is_idempotent() -> None:
    ticket = make_ticket(3, requested=[4, 5], attested=[4], dispute_settled_at_epoch=12)
    once = StackSettlementStackStatus(stack_small_id=3)
    apply_ticket(once, ticket, 11)
    twice = once.model_copy(deep=True)
    apply_ticket(twice, ticket, 11)
    assert twice == once
    assert once.settlement_time is not None


@pytest.mark.parametrize(
    ("attested", "epoch", "phase"),
    [
        ([4, 5], 12, SettlementPhase.SETTLED),  # complete and the period is over
        ([4, 5], 13, SettlementPhase.SETTLED),
        ([4, 5], 11, SettlementPhase.SETTLING),  # complete, period not over
        ([4], 12, SettlementPhase.SETTLING),  # period over, attestations missing
        ([4, 5], None, SettlementPhase.SETTLING),  # epoch unknown
    ],
)
def test_settled_needs_complete_attestations_and_the_period_over(
    attested: list[int], epoch: int | None, phase: SettlementPhase
) -> None:
    ticket = make_ticket(3, requested=[4, 5], attested=attested, dispute_settled_at_epoch=12)
    entry = StackSettlementStackStatus(stack_small_id=3)
    apply_ticket(entry, ticket, epoch)
    assert entry.phase is phase
    assert entry.settlement_complete is (phase is SettlementPhase.SETTLED)


def test_ticket_in_dispute_is_disputed() -> None:
    ticket = make_ticket(3, requested=[4], attested=[4], in_dispute=True)
    entry = StackSettlementStackStatus(stack_small_id=3, phase=SettlementPhase.SETTLING)
    apply_ticket(entry, ticket, 100)
    assert entry.phase is SettlementPhase.DISPUTED
    assert entry.attestation_status is ClaimedAttestationStatus.FAILED
    status = StackSettlementStatus(stacks=[entry])
    conclude(status, 3)
    stalled = next(c for c in status.conditions if c.type == "Stalled")
    assert (stalled.status, stalled.reason) == ("True", "Disputed")


def test_all_settled_sets_ready_and_settled() -> None:
    ticket = make_ticket(3, requested=[], dispute_settled_at_epoch=5)
    entry = StackSettlementStackStatus(stack_small_id=3, phase=SettlementPhase.SETTLING)
    apply_ticket(entry, ticket, 5)
    status = StackSettlementStatus(stacks=[entry])
    conclude(status, 2)
    conds = [c.to_k8s() for c in status.conditions]
    assert condition_status(conds, "Ready") == "True"
    assert condition_status(conds, "Settled") == "True"
    assert status.observed_generation == 2


async def test_a_gas_price_the_node_will_never_accept_ends_stalled_not_retried() -> None:
    """gasPrice 1 passes admission (the schema cannot know the reference price); the node
    refuses it every time: Stalled with the node's reason, one attempt, nothing executed."""
    w = World(coins=1)
    w.gw.script(TRY_SETTLE_STACK, 1, execute=[Reject(RejectionKind.GAS_PRICE_TOO_LOW)])
    spec = spec_for([1]).model_copy(update={"gas_price": 1})
    result = await w.run(spec)
    e = w.entry(1)
    assert e.phase is SettlementPhase.FAILED and e.reason == RejectionKind.GAS_PRICE_TOO_LOW.value
    assert w.stalled_status() == "True"
    assert result.retry_after is None
    assert w.gw.transactions == {} and e.attempts == 1


async def test_the_reference_price_refused_is_retried() -> None:
    """Without a price of its own the resource uses the reference price, which may move
    at the next epoch: a refusal then is retried, not Stalled."""
    w = World(coins=1)
    w.gw.script(TRY_SETTLE_STACK, 1, execute=[Reject(RejectionKind.GAS_PRICE_TOO_LOW)])
    result = await w.run(spec_for([1]))
    assert w.entry(1).phase is not SettlementPhase.FAILED
    assert result.retry_after is not None


async def test_a_budget_the_node_will_never_accept_ends_stalled() -> None:
    w = World(coins=1)
    w.gw.script(TRY_SETTLE_STACK, 1, execute=[Reject(RejectionKind.GAS_BUDGET_TOO_HIGH)])
    await w.run(spec_for([1]))
    assert w.entry(1).reason == "GasBudgetTooHigh" and w.stalled_status() == "True"
