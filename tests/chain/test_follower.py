"""The chain follower against the stand-in answering as Sui does: start point, SCAN_LIMIT,
a cursor below the pruning floor or invalid, a node without ListEvents, and event-read
failures that must not stop the epoch check nor Settled transitions.

Real gateway and stand-in (in-process, upgraded-package mode); the Kubernetes side is an
in-memory stand-in of the three calls the follower makes (no apiserver needed here).
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
import pytest_asyncio

from atoma_operator import metrics
from atoma_operator.atoma import calls
from atoma_operator.atoma.hashing import ProofScheme, blake2b256, settlement_commitment
from atoma_operator.follower import CURSOR_KEY, GAS_LISTING_SECONDS, Follower
from atoma_operator.kube import ObjectKey
from atoma_operator.reconcile.holds import HoldBook, UnitRef
from atoma_operator.reconcile.tickets import TicketReader
from atoma_operator.registry import StackRegistry
from atoma_operator.resources.submission import PendingTransaction
from atoma_operator.settings import Settings
from atoma_operator.sui.errors import ChainUnavailable
from atoma_operator.sui.gas import GasCoinManager
from atoma_operator.sui.gateway import SuiGateway
from atoma_operator.sui.keys import parse_signer
from localnet_plugin import SuiAccount, make_account
from sui_localnet.node import LocalSui
from sui_localnet.testing import running_localnet

CHUNKS = [blake2b256(b"request-1")]


@dataclass
class FakeKube:
    objects: dict[ObjectKey, dict[str, Any]] = field(default_factory=dict)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, type, reason)

    async def get(self, key: ObjectKey) -> dict[str, Any]:
        return copy.deepcopy(self.objects[key])

    async def patch_status(self, key: ObjectKey, status: dict[str, Any], _rv: str) -> None:
        self.objects[key]["status"] = status

    async def post_event(
        self, obj: dict[str, Any], *, type_: str, reason: str, message: str
    ) -> None:
        self.events.append((str(obj.get("kind")), type_, reason))

    async def get_config_map(self, _ns: str, name: str) -> dict[str, str] | None:
        return self.config_maps.get(name)

    async def put_config_map(self, _ns: str, name: str, data: dict[str, str]) -> None:
        self.config_maps.setdefault(name, {}).update(data)


@dataclass
class Ctx:
    tickets: TicketReader
    gas: GasCoinManager
    epoch_changes: int = 0
    holds: HoldBook = field(default_factory=HoldBook)

    def epoch_changed(self) -> None:
        self.epoch_changes += 1


@dataclass
class Rt:
    settings: Settings
    gateway: SuiGateway
    kube: FakeKube
    ctx: Ctx
    registry: StackRegistry


@dataclass
class Harness:
    node: LocalSui
    rt: Rt
    account: SuiAccount
    last_digest: str = ""

    def follower(self) -> Follower:
        return Follower(cast(Any, self.rt))

    @property
    def saved_cursor(self) -> str | None:
        return self.rt.kube.config_maps.get("atoma-operator-state", {}).get(CURSOR_KEY)

    async def settle(self) -> int:
        """A stack of this account settled on chain (security level 0: no attestations)."""
        assert self.account.badge is not None
        gw, node = self.rt.gateway, self.node
        stack = node.create_stack(selected_node_id=self.account.badge.node_small_id)
        badge = await gw.get_object_ref(self.account.badge.object_id)
        assert badge is not None
        proof, leaf = settlement_commitment(CHUNKS, ProofScheme.CONTRACT, 1)
        call = calls.try_settle_stack(
            node.call_package_id,
            await gw.shared_object(node.atoma_db_id, mutable=True),
            badge,
            stack,
            10,
            proof,
            leaf,
            await gw.shared_object(calls.RANDOM_OBJECT_ID, mutable=False),
        )
        coin = (await gw.list_gas_coins())[0].ref
        tx = await gw.build_and_sign(call, gas_coin=coin, gas_price=1000, gas_budget=10**8)
        assert (await gw.execute(tx)).succeeded
        self.last_digest = tx.digest
        return stack

    def settling_resource(self, name: str, stack: int) -> ObjectKey:
        key = ObjectKey("StackSettlement", "default", name)
        body = {
            "apiVersion": "atoma.network/v1alpha1",
            "kind": "StackSettlement",
            "metadata": {"name": name, "namespace": "default", "generation": 1,
                         "resourceVersion": "1"},
            "spec": {"stackSmallIds": [stack]},
            "status": {"stacks": [{"stackSmallId": stack, "phase": "Settling"}]},
        }  # fmt: skip
        self.rt.kube.objects[key] = body
        self.rt.registry.observe("StackSettlement", "ADDED", body)
        return key

    def phase(self, key: ObjectKey) -> str:
        return str(self.rt.kube.objects[key]["status"]["stacks"][0]["phase"])


@pytest_asyncio.fixture(loop_scope="function")
async def harness() -> AsyncIterator[Harness]:
    async with running_localnet(seed=3, upgraded_package=True) as node:
        account = make_account(node)
        gateway = SuiGateway(node.grpc_url, parse_signer(account.keypair.to_bech32()))
        settings = Settings(package_id=node.call_package_id, atoma_db_id=node.atoma_db_id)
        tickets = TicketReader(gateway, package_id=node.call_package_id, db_id=node.atoma_db_id)
        gas = GasCoinManager(gateway)
        rt = Rt(settings, gateway, FakeKube(), Ctx(tickets, gas), StackRegistry())
        try:
            yield Harness(node, rt, account)
        finally:
            await gateway.close()


def _value(metric: Any, *labels: str) -> float:
    target = metric.labels(*labels) if labels else metric
    return float(target._value.get())


def _sample(name: str, **labels: str) -> float | None:
    """What a scrape of /metrics would show now."""
    return metrics.REGISTRY.get_sample_value(name, labels)


async def test_first_start_begins_at_the_tip_and_sweeps_open_resources(harness: Harness) -> None:
    old = await harness.settle()  # before the operator ever ran
    key = harness.settling_resource("old", old)
    follower = harness.follower()
    delivered = _value(metrics.FOLLOWER_EVENTS, "StackTrySettleEvent")
    assert await follower.tick()
    # the sweep read the open resource's ticket: known without replaying history
    assert harness.rt.kube.objects[key]["status"]["stacks"][0]["disputeSettledAtEpoch"] >= 0
    # the event stream started at the tip: the old event was never delivered
    assert _value(metrics.FOLLOWER_EVENTS, "StackTrySettleEvent") == delivered
    cursor = harness.saved_cursor
    assert cursor
    before = _value(metrics.FOLLOWER_EVENTS, "StackTrySettleEvent")
    await harness.settle()
    assert await follower.tick()
    assert _value(metrics.FOLLOWER_EVENTS, "StackTrySettleEvent") == before + 1
    assert harness.saved_cursor != cursor


async def test_start_checkpoint_setting_replays_from_there(harness: Harness) -> None:
    await harness.settle()
    await harness.settle()
    harness.rt.settings = Settings(
        package_id=harness.node.call_package_id,
        atoma_db_id=harness.node.atoma_db_id,
        follower_start_checkpoint=0,
    )
    before = _value(metrics.FOLLOWER_EVENTS, "StackTrySettleEvent")
    assert await harness.follower().tick()
    assert _value(metrics.FOLLOWER_EVENTS, "StackTrySettleEvent") == before + 2


async def test_scan_limit_is_not_the_tip(harness: Harness) -> None:
    follower = harness.follower()
    assert await follower.tick()  # start point: the current tip
    for _ in range(4):
        await harness.settle()
    harness.node.faults.events_scan_limit = 1
    before = _value(metrics.FOLLOWER_EVENTS, "StackTrySettleEvent")
    pages = 0
    while not await follower.tick():  # SCAN_LIMIT: continue at once
        pages += 1
        assert pages < 20
    assert pages >= 3
    assert _value(metrics.FOLLOWER_EVENTS, "StackTrySettleEvent") == before + 4


@pytest.mark.parametrize("reason", ["out_of_range", "invalid"])
async def test_a_refused_cursor_restarts_from_a_safe_point(harness: Harness, reason: str) -> None:
    stack = await harness.settle()
    key = harness.settling_resource("r", stack)
    follower = harness.follower()
    assert await follower.tick()
    for _ in range(3):
        await harness.settle()
    if reason == "out_of_range":
        harness.node.faults.pruning_floor = harness.node.ledger.checkpoints[-1].sequence_number
    else:
        harness.rt.kube.config_maps["atoma-operator-state"][CURSOR_KEY] = "bm90LWEtY3Vyc29y"
        follower = harness.follower()  # a restart loads the broken cursor
    resets = _value(metrics.FOLLOWER_CURSOR_RESETS, reason)
    harness.rt.kube.objects[key]["status"]["stacks"][0]["phase"] = "Settling"
    ticks = 0
    while not await follower.tick():
        ticks += 1
        assert ticks < 5
    assert _value(metrics.FOLLOWER_CURSOR_RESETS, reason) == resets + 1
    assert ("ConfigMap", "Warning", "EventCursorReset") in harness.rt.kube.events
    assert harness.saved_cursor  # a new, accepted cursor was saved
    assert await follower.tick()  # and it keeps working
    assert harness.phase(key) == "Settling"  # re-derived by the sweep, not lost


async def test_without_list_events_it_reads_tickets_of_open_resources(harness: Harness) -> None:
    harness.node.faults.events_disabled = True
    stack = await harness.settle()
    key = harness.settling_resource("r", stack)
    follower = harness.follower()
    assert await follower.tick()
    assert follower.degraded and _value(metrics.FOLLOWER_EVENT_STREAM) == 0
    reads = harness.node.faults.calls["GetObject"]
    assert await follower.tick()
    # each tick reads the open resources' tickets (db cached: field + ticket per stack)
    assert 1 <= harness.node.faults.calls["GetObject"] - reads <= 3
    for _ in range(3):  # the dispute period passes: Settled without any event
        harness.node.advance_epoch()
    assert await follower.tick()
    assert harness.phase(key) == "Settled"
    harness.rt.registry.observe("StackSettlement", "MODIFIED", harness.rt.kube.objects[key])
    reads = harness.node.faults.calls["GetObject"]
    assert await follower.tick()
    assert harness.node.faults.calls["GetObject"] == reads  # no open resources, no reads


async def test_event_read_failure_keeps_epoch_and_settled_transitions(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = await harness.settle()
    key = harness.settling_resource("r", stack)
    follower = harness.follower()
    assert await follower.tick()

    async def down(**_: Any) -> Any:
        raise ChainUnavailable("ListEvents: node unreachable")

    monkeypatch.setattr(harness.rt.gateway, "list_events", down)
    for _ in range(3):
        harness.node.advance_epoch()
    failures = _value(metrics.FOLLOWER_FAILURES, "events")
    with pytest.raises(ChainUnavailable):
        await follower.tick()
    assert harness.rt.ctx.epoch_changes == 1  # suspect coins released all the same
    assert harness.phase(key) == "Settled"
    assert _value(metrics.FOLLOWER_FAILURES, "events") == failures + 1


async def test_lag_grows_while_ticks_fail(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    follower = Follower(cast(Any, harness.rt), clock=lambda: now[0])
    assert await follower.tick()
    assert _sample("atoma_operator_follower_lag_seconds") == 0

    async def down() -> Any:
        raise ChainUnavailable("GetEpoch: node unreachable")

    monkeypatch.setattr(harness.rt.gateway, "current_epoch", down)
    now[0] += 30
    with pytest.raises(ChainUnavailable):
        await follower.tick()
    assert _sample("atoma_operator_follower_lag_seconds") == 30
    now[0] += 5  # read at scrape time: grows while a pass hangs, not only after it failed
    assert _sample("atoma_operator_follower_lag_seconds") == 35


async def test_the_follower_keeps_the_gas_pool_listed_for_its_metrics(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    gas = GasCoinManager(harness.rt.gateway, clock=lambda: now[0])
    monkeypatch.setattr(harness.rt.ctx, "gas", gas)
    metrics.track(conditions=harness.rt.registry.condition_counts, gas=gas.stats)
    assert _sample("atoma_operator_gas_pool_balance_mist") is None  # never listed: no guess
    follower = Follower(cast(Any, harness.rt), clock=lambda: now[0])
    assert await follower.tick()
    listed = await harness.rt.gateway.list_gas_coins()
    assert _sample("atoma_operator_gas_pool_balance_mist") == sum(c.balance for c in listed)
    assert _sample("atoma_operator_gas_pool_usable_coins") == len(listed) > 0
    listings = gas.stats().refreshes_total
    assert await follower.tick()  # within the minute: no new listing
    assert gas.stats().refreshes_total == listings

    async def down() -> Any:
        raise ChainUnavailable("GetEpoch: node unreachable")

    monkeypatch.setattr(harness.rt.gateway, "current_epoch", down)
    now[0] += GAS_LISTING_SECONDS + 1
    failures = _value(metrics.FOLLOWER_FAILURES, "gas")
    with pytest.raises(ChainUnavailable):
        await follower.tick()
    assert gas.stats().refreshes_total == listings  # the node is down: no extra call
    assert _value(metrics.FOLLOWER_FAILURES, "gas") == failures
    assert _sample("atoma_operator_gas_pool_balance_mist") == sum(c.balance for c in listed)
    monkeypatch.undo()
    monkeypatch.setattr(harness.rt.ctx, "gas", gas)
    assert await follower.tick()
    assert gas.stats().refreshes_total == listings + 1


async def test_events_read_while_the_epoch_read_fails_are_not_lost(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    follower = harness.follower()
    assert await follower.tick()
    stack = await harness.settle()
    key = harness.settling_resource("r", stack)
    harness.rt.kube.objects[key]["status"]["stacks"][0].pop("disputeSettledAtEpoch", None)
    follower._epoch = await harness.rt.gateway.current_epoch()  # no epoch change: no sweep
    real = harness.rt.gateway.current_epoch

    async def down() -> Any:
        raise ChainUnavailable("GetEpoch: node unreachable")

    monkeypatch.setattr(harness.rt.gateway, "current_epoch", down)
    with pytest.raises(ChainUnavailable):
        await follower.tick()  # the event was read, the cursor moved past it
    assert "disputeSettledAtEpoch" not in harness.rt.kube.objects[key]["status"]["stacks"][0]
    monkeypatch.setattr(harness.rt.gateway, "current_epoch", real)
    assert await follower.tick()
    assert harness.rt.kube.objects[key]["status"]["stacks"][0]["disputeSettledAtEpoch"] >= 0


async def test_a_node_that_keeps_refusing_does_not_spin(harness: Harness) -> None:
    follower = harness.follower()
    assert await follower.tick()
    harness.node.faults.pruning_floor = 10**6  # above the tip: every start is refused
    assert not await follower.tick()  # first refusal: restart at once
    assert await follower.tick()  # refused again: wait for the poll interval


async def test_events_of_our_own_applied_transactions_cost_no_refresh(harness: Harness) -> None:
    """The pass already wrote what its own transaction's effects say: the follower skips
    the event (two ticket reads, a GET and maybe a write less per settled stack)."""
    follower = harness.follower()
    assert await follower.tick()
    follower._epoch = await harness.rt.gateway.current_epoch()  # no epoch change: no sweep
    stack = await harness.settle()
    key = harness.settling_resource("own", stack)
    entry = harness.rt.kube.objects[key]["status"]["stacks"][0]
    entry.pop("disputeSettledAtEpoch", None)
    book = harness.rt.ctx.holds  # resolved by a pass of this resource, in this process
    pending = PendingTransaction.model_construct(digest=harness.last_digest)
    book.claim(UnitRef(key, f"stack/{stack}"), pending, [])
    book.release(harness.last_digest)
    assert await follower.tick()
    assert "disputeSettledAtEpoch" not in entry
    other = await harness.settle()  # not ours: refreshed as before
    okey = harness.settling_resource("other", other)
    assert await follower.tick()
    assert harness.rt.kube.objects[okey]["status"]["stacks"][0]["disputeSettledAtEpoch"] >= 0
