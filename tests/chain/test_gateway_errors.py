"""Each row of sui-network.md's ExecuteTransaction table, through the real gateway.

The stand-in answers with Sui's status code and message; the gateway must classify by
the code first (lock conflict = FAILED_PRECONDITION whatever the text) and by the message
among the INVALID_ARGUMENT cases. Lock conflict and stale version rows are in
test_gateway_localnet.py (they need a race); the rest are here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from atoma_operator.atoma import calls
from atoma_operator.atoma.hashing import ProofScheme, blake2b256, settlement_commitment
from atoma_operator.sui.errors import ChainUnavailable, RejectionKind, TransactionRejected
from atoma_operator.sui.gateway import SuiGateway
from atoma_operator.sui.keys import parse_signer
from atoma_operator.sui.types import MoveCall, SignedTransaction
from localnet_plugin import make_account
from sui_localnet.node import LocalSui
from sui_localnet.testing import running_localnet

CHUNKS = [blake2b256(b"request-1")]
RGP = 1000


@dataclass
class Me:
    node: LocalSui
    gateway: SuiGateway
    node_id: int
    badge_id: str

    async def settle_call(self) -> MoveCall:
        gw = self.gateway
        stack = self.node.create_stack(selected_node_id=self.node_id)
        badge = await gw.get_object_ref(self.badge_id)
        assert badge is not None
        proof, leaf = settlement_commitment(CHUNKS, ProofScheme.CONTRACT, 1)
        return calls.try_settle_stack(
            self.node.call_package_id,
            await gw.shared_object(self.node.atoma_db_id, mutable=True),
            badge,
            stack,
            10,
            proof,
            leaf,
            await gw.shared_object(calls.RANDOM_OBJECT_ID, mutable=False),
        )

    async def tx(self, *, price: int = RGP, budget: int = 10**8) -> SignedTransaction:
        coin = (await self.gateway.list_gas_coins())[0].ref
        return await self.gateway.build_and_sign(
            await self.settle_call(), gas_coin=coin, gas_price=price, gas_budget=budget
        )


@pytest_asyncio.fixture(loop_scope="function")
async def me() -> AsyncIterator[Me]:
    async with running_localnet(seed=9, reference_gas_price=RGP) as node:
        account = make_account(node, coins=1, balance=10**9)
        assert account.badge is not None
        gateway = SuiGateway(node.grpc_url, parse_signer(account.keypair.to_bech32()))
        try:
            yield Me(node, gateway, account.badge.node_small_id, account.badge.object_id)
        finally:
            await gateway.close()


@pytest.mark.parametrize(
    ("price", "budget", "kind", "text"),
    [
        (RGP, 999 * RGP, RejectionKind.GAS_BUDGET_TOO_LOW, "is lower than min"),
        (RGP, 51 * 10**9, RejectionKind.GAS_BUDGET_TOO_HIGH, "is higher than max"),
        (RGP, 2 * 10**9, RejectionKind.GAS_BALANCE_TOO_LOW, "lower than the needed amount"),
        (RGP - 1, 10**8, RejectionKind.GAS_PRICE_TOO_LOW, "under reference gas price"),
        (100_000, 2 * 10**8, RejectionKind.GAS_PRICE_TOO_HIGH, "cannot exceed 100000"),
    ],
    ids=["budget-low", "budget-high", "balance-low", "price-low", "price-high"],
)
async def test_gas_refusals_have_distinct_kinds(
    me: Me, price: int, budget: int, kind: RejectionKind, text: str
) -> None:
    tx = await me.tx(price=price, budget=budget)
    with pytest.raises(TransactionRejected) as info:
        await me.gateway.execute(tx)
    assert info.value.kind is kind
    assert text in info.value.detail
    assert info.value.retry_cannot_fix is (
        kind
        in (
            RejectionKind.GAS_BUDGET_TOO_LOW,
            RejectionKind.GAS_BUDGET_TOO_HIGH,
            RejectionKind.GAS_PRICE_TOO_HIGH,
        )
    )
    assert me.node.executions(tx.digest) == 0  # refused before execution


async def test_no_finality_in_time_is_outcome_unknown_and_the_lookup_finds_it(me: Me) -> None:
    tx = await me.tx()
    me.node.faults.lose_responses = 1  # UNAVAILABLE "timed-out before finality", node goes on
    with pytest.raises(ChainUnavailable, match="finality"):
        await me.gateway.execute(tx)
    found = await me.gateway.get_transaction(tx.digest)
    assert found is not None and found.succeeded
    again = await me.gateway.execute(tx)  # the same digest re-sent: OK, original effects
    assert again.digest == tx.digest and me.node.executions(tx.digest) == 1


async def test_failed_precondition_is_a_lock_conflict_whatever_the_text(me: Me) -> None:
    tx = await me.tx()
    me.node.faults.execute_latency = 0.3
    first = asyncio.create_task(me.gateway.execute(tx))
    deadline = asyncio.get_running_loop().time() + 5
    while not me.node.ledger.is_pending(tx.digest):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    rival = await me.gateway.build_and_sign(
        await me.settle_call(), gas_coin=tx.gas_coin, gas_price=RGP, gas_budget=10**8
    )
    with pytest.raises(TransactionRejected) as info:
        await me.gateway.execute(rival)
    assert info.value.kind is RejectionKind.LOCK_CONFLICT and info.value.is_equivocation
    assert (await first).succeeded


async def test_budget_from_simulation_executes_and_is_far_below_the_default(me: Me) -> None:
    """Simulate, size the budget as the SDK does, sign with it: it executes, and the
    computation is one of Sui's buckets (x price)."""
    from atoma_operator.sui.budget import plan_budget

    probe = await me.tx(budget=50_000_000)
    simulated = await me.gateway.simulate(probe)
    cost = simulated.gas_cost
    assert cost is not None and cost.computation % RGP == 0
    assert cost.computation // RGP in (1_000, 5_000, 10_000, 20_000, 50_000)
    plan = plan_budget(cost, price=RGP, ceiling=50_000_000)
    assert plan.fits and plan.budget < 50_000_000 // 2
    tx = await me.gateway.build_and_sign(
        await me.settle_call(), gas_coin=probe.gas_coin, gas_price=RGP, gas_budget=plan.budget
    )
    outcome = await me.gateway.execute(tx)
    assert outcome.succeeded and outcome.gas_used_mist <= plan.budget
    print(f"try_settle_stack on the stand-in: {cost} -> budget {plan.budget}")


async def test_list_events_answers_as_sui_does(me: Me) -> None:
    """SCAN_LIMIT is not the tip; a cursor or start below the pruning floor is
    OUT_OF_RANGE; a node without RPC indexes is UNAVAILABLE "rpc indexes are disabled"."""
    from atoma_operator.atoma.events import event_type
    from atoma_operator.sui.errors import EventCursorRejected, EventsNotServed

    prefix = event_type(me.node.package_id, "")
    for _ in range(3):
        assert (await me.gateway.execute(await me.tx())).succeeded
    me.node.faults.events_scan_limit = 1
    first = await me.gateway.list_events(event_type_prefix=prefix, after=None, limit=50)
    assert not first.at_tip and first.next_cursor
    me.node.faults.events_scan_limit = None
    rest = await me.gateway.list_events(event_type_prefix=prefix, after=first.next_cursor, limit=50)
    assert rest.at_tip and len(first.events) + len(rest.events) == 3

    me.node.faults.pruning_floor = me.node.ledger.checkpoints[-1].sequence_number
    with pytest.raises(EventCursorRejected) as below:
        await me.gateway.list_events(event_type_prefix=prefix, after=first.next_cursor, limit=5)
    assert below.value.reason == "out_of_range"
    with pytest.raises(EventCursorRejected):
        await me.gateway.list_events(
            event_type_prefix=prefix, after=None, limit=5, start_checkpoint=0
        )
    clamped = await me.gateway.list_events(event_type_prefix=prefix, after=None, limit=5)
    assert len(clamped.events) <= 1  # an open start is clamped to the floor
    assert await me.gateway.ledger_bounds() == (me.node.faults.pruning_floor,) * 2

    with pytest.raises(EventCursorRejected) as invalid:
        await me.gateway.list_events(event_type_prefix=prefix, after="AAAA", limit=5)
    assert invalid.value.reason == "invalid"

    me.node.faults.events_disabled = True
    with pytest.raises(EventsNotServed, match="rpc indexes are disabled"):
        await me.gateway.list_events(event_type_prefix=prefix, after=None, limit=5)
