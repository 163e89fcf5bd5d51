"""The write-ahead protocol under interference, as a Hypothesis state machine.

Resources on 1-3 badges and 1-4 gas coins with overlapping stacks are reconciled by the
real pass (`reconcile.run.run_pass`, the code the kopf handlers call) against an
in-memory cluster and chain (`simworld`) that answer 409, lose and fail writes, wipe
status, delete, label, restart the operator (in-memory state lost), change the leader,
leave transactions in flight, lag and go down. Invariants, after every step:

I1  at most one successful settlement per stack, one attestation per (stack, node);
I2  no (object, version) signed into two transactions that could both be unfinalised;
I3  nothing executes that was not recorded in a resource's status first;
I4  once the faults stop, every resource reaches Ready or Stalled within a bounded number
    of passes and no hold or lease outlives its transaction;
I5  in-memory state is bounded by the live resources.

`make test` runs a short budget (about a minute); `make test-slow` runs 10,000+ examples
(HYPOTHESIS_EXAMPLES overrides both).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import UTC, datetime
from typing import Any

import pytest
from fakes import SUBMIT_ATTESTATION, TRY_SETTLE_STACK, FakeClock, make_context, oid
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from simworld import SimChain, SimCluster, fake_owned_inputs, status_digests

from atoma_operator.kube import Conflict, NotFound, ObjectKey
from atoma_operator.reconcile import orphans
from atoma_operator.reconcile.context import ReconcileContext
from atoma_operator.reconcile.holds import HoldBook
from atoma_operator.reconcile.run import run_pass
from atoma_operator.registry import StackRegistry, has_pending, is_final
from atoma_operator.sui.gas import GasCoinManager
from atoma_operator.sui.types import ExecutionStatus, ObjectRef, SignedTransaction

STACKS = range(1, 6)
NAMESPACE = "ns"
QUIESCE_ROUNDS = 30
TOTAL_HASH = "0x" + "ab" * 32


def _examples(default: int) -> int:
    return int(os.environ.get("HYPOTHESIS_EXAMPLES", default))


class Operator:
    """One operator process: everything it keeps in memory (lost on restart)."""

    def __init__(self, world: ProtocolMachine) -> None:
        self.book = HoldBook(clock=lambda: world.clock().timestamp(), inputs_of=fake_owned_inputs)
        gas = GasCoinManager(world.chain, held=self.book.is_held, min_refresh_interval=0)
        self.book.on_release(gas.wake)
        self.ctx: ReconcileContext = make_context(
            world.chain,
            badges=world.badges,
            clock=world.clock,
            gas=gas,
            gas_wait_seconds=1e-9,  # no real-time waits: runs must be reproducible
            expiry_confirmations=3,
            expiry_window_seconds=0,
        )
        self.ctx.holds = self.book
        self.leader = True
        self.ctx.may_submit = lambda: self.leader
        self.registry = StackRegistry(self.book)


class ProtocolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock(datetime(2026, 3, 1, tzinfo=UTC))
        self.chain = SimChain()
        self.cluster = SimCluster()
        self.badges: list[Any] = []
        self.coins: list[str] = []
        self.names = 0
        self.keys: list[ObjectKey] = []
        self.chain.on_sign.append(self._check_i2)
        self.violations: list[str] = []
        self.abandoned: set[str] = set()

    # -- set-up -----------------------------------------------------------------------------

    @initialize(badges=st.integers(1, 3), coins=st.integers(1, 4))
    def setup(self, badges: int, coins: int) -> None:
        self.badges = [self.chain.add_badge(100 + i) for i in range(badges)]
        self.coins = [self.chain.add_coin() for _ in range(coins)]
        for stack in STACKS:  # the contract samples one of our badges to attest each stack
            self.chain.requested_on_settle[stack] = [self.badges[stack % badges].node_small_id]
        self.op = Operator(self)

    def teardown(self) -> None:
        try:
            if self.badges:
                self._quiesce_and_check()
        finally:
            self.loop.close()

    # -- the resources ------------------------------------------------------------------------

    @rule(
        stacks=st.lists(st.sampled_from(list(STACKS)), min_size=1, max_size=3, unique=True),
        badge=st.integers(0, 2),
    )
    def create(self, stacks: list[int], badge: int) -> None:
        node = self.badges[badge % len(self.badges)].node_small_id
        self.names += 1
        key = ObjectKey("StackSettlement", NAMESPACE, f"stl-{self.names}")
        spec = {
            "stackSmallIds": stacks,
            "numClaimedComputeUnits": 10,
            "nodeSmallId": node,
            "proofs": [{"stackSmallId": s, "totalHash": TOTAL_HASH} for s in stacks],
        }
        self.cluster.create(key, spec)
        self.keys.append(key)

    @rule(
        stacks=st.lists(st.sampled_from(list(STACKS)), min_size=1, max_size=2, unique=True),
        named=st.booleans(),
    )
    def create_attestation(self, stacks: list[int], named: bool) -> None:
        """Attest with the requested badge (named, or every requested badge we hold)."""
        self.names += 1
        key = ObjectKey("Attestation", NAMESPACE, f"atst-{self.names}")
        spec: dict[str, Any] = {
            "stackSmallIds": stacks,
            "proofs": [{"stackSmallId": s, "totalHash": TOTAL_HASH} for s in stacks],
        }
        if named:
            spec["nodeSmallId"] = self.chain.requested_on_settle[stacks[0]][0]
        self.cluster.create(key, spec)
        self.keys.append(key)

    def _existing(self) -> list[ObjectKey]:
        return [k for k in self.keys if k in self.cluster.objects]

    @precondition(lambda self: bool(self._existing()))
    @rule(picks=st.lists(st.integers(0, 1000), min_size=1, max_size=3))
    def passes(self, picks: list[int]) -> None:
        """1-3 passes at once (resources share badges, coins and stacks)."""
        existing = self._existing()
        keys = list(dict.fromkeys(existing[p % len(existing)] for p in picks))
        self.loop.run_until_complete(self._passes(keys))

    @precondition(lambda self: bool(self._existing()))
    @rule(picks=st.lists(st.integers(0, 1000), min_size=1, max_size=3))
    def more_passes(self, picks: list[int]) -> None:
        """The same as `passes` (a second rule doubles how often passes are drawn)."""
        self.passes(picks)

    @precondition(lambda self: bool(self._existing()))
    @rule(
        picks=st.lists(st.integers(0, 1000), min_size=1, max_size=2),
        victim=st.integers(0, 1000),
        what=st.sampled_from(["label", "wipe", "delete"]),
        after=st.integers(0, 12),
    )
    def passes_meet_interference(
        self, picks: list[int], victim: int, what: str, after: int
    ) -> None:
        """A user acts while passes are in flight, `after` scheduling points in."""
        existing = self._existing()
        keys = list(dict.fromkeys(existing[p % len(existing)] for p in picks))
        target = existing[victim % len(existing)]

        async def interfere() -> None:
            for _ in range(after):
                await asyncio.sleep(0)
            getattr(self.cluster, what)(target)

        async def both() -> None:
            await asyncio.gather(self._passes(keys), interfere())

        self.loop.run_until_complete(both())

    async def _passes(self, keys: list[ObjectKey]) -> None:
        await asyncio.gather(*(self._pass(k) for k in keys))

    async def _pass(self, key: ObjectKey) -> None:
        try:
            obj = await self.cluster.get(key)
        except NotFound:
            return
        if is_final(obj) and not has_pending(obj):
            return
        with contextlib.suppress(NotFound, Conflict, OSError):  # kopf retries: a later step
            await run_pass(self.op.ctx, self.cluster, key, obj)

    # -- interference -----------------------------------------------------------------------

    @precondition(lambda self: bool(self._existing()))
    @rule(
        pick=st.integers(0, 1000),
        fault=st.sampled_from(["label", "lose", "fail", "wipe", "delete"]),
    )
    def arm_write_fault(self, pick: int, fault: str) -> None:
        """The resource's next status write meets this (a label lands first, ...)."""
        existing = self._existing()
        self.cluster.armed[existing[pick % len(existing)]].append(fault)

    @precondition(lambda self: bool(self._existing()))
    @rule(pick=st.integers(0, 1000), what=st.sampled_from(["label", "wipe", "delete"]))
    def interfere_now(self, pick: int, what: str) -> None:
        existing = self._existing()
        getattr(self.cluster, what)(existing[pick % len(existing)])

    @rule()
    def deliver_watch(self) -> None:
        events, self.cluster.watch = self.cluster.watch, []
        for kind, body in events:
            self.op.registry.observe(body["kind"], kind, body)

    @rule()
    def restart(self) -> None:
        """A new operator process: memory lost; kopf's index lists every object first.

        A transaction whose record a user destroyed (status wiped, resource deleted) while
        its outcome was unknown is known only to the process that signed it; once that
        memory is gone nothing in the cluster shows it (the README's "limits"). Sui then
        refuses the second of two such transactions with a lock conflict, which the
        operator recovers from (I4 still holds); I2 does not count such an abandoned one.
        """
        shown = set().union(
            *(status_digests(o.get("status") or {}) for o in self.cluster.objects.values())
        )
        self.abandoned |= self.cluster.destroyed - shown
        self.op = Operator(self)
        self.cluster.watch = []
        for key, obj in self.cluster.objects.items():
            self.op.registry.observe(key.kind, None, obj)

    @rule()
    def change_leader(self) -> None:
        """The old leader stops signing, a new one takes over (with nothing in memory)."""
        self.op.leader = False
        self.restart()

    @rule(fault=st.sampled_from(["delay", "lost", "lag"]))
    def chain_fault(self, fault: str) -> None:
        self.chain.faults.append(fault)

    @rule(
        methods=st.sets(
            st.sampled_from(["execute", "get_transaction", "get_object_ref", "simulate"])
        )
    )
    def outage(self, methods: set[str]) -> None:
        self.chain.down = set(methods)

    @rule()
    def chain_progress(self) -> None:
        self.chain.progress()

    @rule(seconds=st.sampled_from([1, 30, 400]))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule()
    def resolve_orphans(self) -> None:
        self.loop.run_until_complete(orphans.resolve_orphans(self.op.ctx))

    # -- invariants ---------------------------------------------------------------------------

    def _alive(self, digest: str) -> bool:
        """Could this transaction still execute? (I2 asks this of every earlier one.)"""
        if digest in self.chain.transactions or digest in self.chain.refused:
            return False
        if digest in self.chain.inflight:
            return (
                digest not in self.abandoned or self.op.book.intent_for_digest(digest) is not None
            )
        recorded = any(
            digest in status_digests(o.get("status") or {}) for o in self.cluster.objects.values()
        )
        return recorded or self.op.book.intent_for_digest(digest) is not None

    def _check_i2(self, tx: SignedTransaction, refs: list[ObjectRef]) -> None:
        for ref in refs:
            for other in self.chain.signed_on.get((ref.object_id, ref.version), ()):
                if other != tx.digest and self._alive(other):
                    self.violations.append(
                        f"I2: {tx.digest} signed on {ref.object_id}@{ref.version} while "
                        f"{other} could still execute"
                    )

    @invariant()
    def i1_one_settlement_per_stack(self) -> None:
        settled: dict[int, int] = {}
        for digest, outcome in self.chain.transactions.items():
            function, sid = self.chain.unit_of(digest)
            if function == TRY_SETTLE_STACK and outcome.status is ExecutionStatus.SUCCESS:
                settled[sid] = settled.get(sid, 0) + 1
        assert all(n <= 1 for n in settled.values()), settled

    @invariant()
    def i1_one_attestation_per_stack_and_node(self) -> None:
        attested: dict[tuple[int, int], int] = {}
        for digest, outcome in self.chain.transactions.items():
            function, sid = self.chain.unit_of(digest)
            if function == SUBMIT_ATTESTATION and outcome.status is ExecutionStatus.SUCCESS:
                node = self.chain.badge_nodes[self.chain.owned_of(digest)[0].object_id]
                attested[(sid, node)] = attested.get((sid, node), 0) + 1
        assert all(n <= 1 for n in attested.values()), attested

    @invariant()
    def i2_no_equivocation(self) -> None:
        assert not self.violations, self.violations

    @invariant()
    def i3_recorded_before_executed(self) -> None:
        missing = set(self.chain.transactions) - self.cluster.ever_recorded
        assert not missing, f"executed but never recorded: {missing}"

    # -- I4 and I5: the faults stop --------------------------------------------------------------

    def _quiesce_and_check(self) -> None:
        self.chain.down = set()
        self.chain.faults.clear()
        self.cluster.armed.clear()
        self.op.leader = True
        for _ in range(QUIESCE_ROUNDS):
            self.chain.progress()
            self.deliver_watch()
            self.resolve_orphans()
            self.clock.advance(400)
            for key in self._existing():
                self.loop.run_until_complete(self._pass(key))
            self.deliver_watch()
            if self._settled():
                break
        open_ = {
            str(k): (self.cluster.objects[k].get("status") or {})
            for k in self._existing()
            if not self._done(k)
        }
        assert self._settled(), f"I4: not Ready/Stalled after {QUIESCE_ROUNDS} rounds: {open_}"
        sizes = self.op.book.sizes()
        assert sizes["claims"] == 0 and sizes["live"] == 0, f"I4: holds outlived: {sizes}"
        assert self.op.ctx.gas.stats().in_use == 0, "I4: a gas lease outlived its transaction"
        assert len(self.op.ctx.locks) == 0, "I5: locks kept for idle keys"
        assert sizes["recorded_objects"] == 0, sizes
        assert len(self.op.registry) == len(self._existing()), "I5: registry kept deleted resources"
        self.i1_one_settlement_per_stack()
        self.i1_one_attestation_per_stack_and_node()
        self.i2_no_equivocation()
        self.i3_recorded_before_executed()

    def _done(self, key: ObjectKey) -> bool:
        obj = self.cluster.objects[key]
        status = obj.get("status") or {}
        if has_pending(obj):
            return False
        conds = {c["type"]: c for c in status.get("conditions") or []}
        if any(conds.get(t, {}).get("status") == "True" for t in ("Ready", "Stalled")):
            return True
        # An attestation for a stack nobody settled waits for its ticket, by design.
        unsettled = [s for s in obj["spec"]["stackSmallIds"] if s not in self.chain.tickets]
        return key.kind == "Attestation" and bool(unsettled)

    def _settled(self) -> bool:
        return (
            all(self._done(k) for k in self._existing())
            and not self.op.book.orphans()
            and not self.chain.inflight
        )


ProtocolMachine.TestCase.settings = settings(
    max_examples=_examples(1000),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_protocol_short = ProtocolMachine.TestCase


@pytest.mark.slow
@pytest.mark.timeout(3600)  # 10,000 examples take 5-15 minutes on a shared 2-core machine
def test_protocol_long() -> None:
    """10,000 interleavings and more (make test-slow)."""
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        ProtocolMachine,
        settings=settings(
            max_examples=_examples(10_000),
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


__all__ = ["oid"]
