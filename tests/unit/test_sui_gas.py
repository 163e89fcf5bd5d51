"""Gas-coin manager: one coin version per unfinalised transaction, under concurrency."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable

import pytest

from atoma_operator.sui.gas import (
    GasCoinBusy,
    GasCoinManager,
    GasCoinNotFound,
    GasError,
    NoGasCoin,
    Release,
)
from atoma_operator.sui.txbuild import normalize_id
from atoma_operator.sui.types import GasCoin, ObjectRef

SENDER = normalize_id("0x5e4d")


def oid(n: int) -> str:
    return normalize_id(hex(0x1000 + n))


class FakeChain:
    """Coins with versions; `consume` plays a transaction's effects on the gas coin."""

    def __init__(self, balances: Iterable[int]) -> None:
        self.coins: dict[str, tuple[int, int]] = {}  # id -> (version, balance)
        for i, balance in enumerate(balances):
            self.coins[oid(i)] = (1, balance)
        self.list_calls = 0
        self.get_calls = 0
        self.used: set[tuple[str, int]] = set()
        self.yield_in_reads = True

    @property
    def sender(self) -> str:
        return SENDER

    def ref(self, object_id: str) -> ObjectRef:
        version, _ = self.coins[object_id]
        return ObjectRef(object_id, version, f"d{version}")

    async def list_gas_coins(self, owner: str | None = None) -> list[GasCoin]:
        self.list_calls += 1
        if self.yield_in_reads:
            await asyncio.sleep(0)
        return [GasCoin(self.ref(i), bal) for i, (_, bal) in self.coins.items()]

    async def get_object_ref(self, object_id: str) -> ObjectRef | None:
        self.get_calls += 1
        if self.yield_in_reads:
            await asyncio.sleep(0)
        return self.ref(object_id) if object_id in self.coins else None

    def consume(self, ref: ObjectRef, spent: int = 10) -> ObjectRef:
        """Execute a transaction paying with `ref`; refuses a version twice (equivocation)."""
        key = (ref.object_id, ref.version)
        assert key not in self.used, f"coin version {key} used by two transactions"
        self.used.add(key)
        version, balance = self.coins[ref.object_id]
        assert version == ref.version, "stale gas coin version"
        self.coins[ref.object_id] = (version + 1, balance - spent)
        return self.ref(ref.object_id)


async def test_pool_loads_lazily_and_prefers_covering_coins() -> None:
    chain = FakeChain([100, 5_000, 50])
    manager = GasCoinManager(chain)
    assert chain.list_calls == 0
    lease = await manager.acquire(None, 1_000)
    assert chain.list_calls == 1
    assert lease.object_id == oid(1)
    assert lease.ref == chain.ref(oid(1))
    manager.release(lease, Release.moved(chain.consume(lease.ref)))
    again = await manager.acquire(None, 1_000)
    assert again.ref.version == 2  # the effects' reference, not the listed one
    assert chain.list_calls == 1


async def test_no_coin_covers_budget_raises_after_one_refresh() -> None:
    chain = FakeChain([10, 20])
    manager = GasCoinManager(chain, min_refresh_interval=0)
    with pytest.raises(NoGasCoin, match="covers the budget of 1000"):
        await manager.acquire(None, 1_000)
    assert chain.list_calls == 1  # the lazy load was fresh: no second listing
    with pytest.raises(NoGasCoin):
        await manager.acquire(None, 1_000)
    assert chain.list_calls == 2  # exhaustion reloads once per call, then gives up
    slow = GasCoinManager(chain, min_refresh_interval=3600)
    await slow.refresh()
    with pytest.raises(NoGasCoin):
        await slow.acquire(None, 1_000)
    assert chain.list_calls == 3  # rate-limited: no reload within the interval


async def test_refresh_on_exhaustion_finds_new_funds() -> None:
    chain = FakeChain([10])
    manager = GasCoinManager(chain, min_refresh_interval=0)
    await manager.refresh()
    chain.coins[oid(7)] = (3, 10_000)  # funded meanwhile
    lease = await manager.acquire(None, 1_000)
    assert lease.ref == chain.ref(oid(7))


async def test_named_coin_is_serialised_fifo() -> None:
    chain = FakeChain([1_000])
    manager = GasCoinManager(chain)
    first = await manager.acquire(oid(0))
    order: list[int] = []

    async def waiter(n: int) -> None:
        lease = await manager.acquire(oid(0))
        order.append(n)
        manager.release(lease, Release.moved(chain.consume(lease.ref)))

    tasks = [asyncio.create_task(waiter(n)) for n in range(5)]
    await _until(lambda: manager.stats().waiting == 5)
    assert manager.stats().in_use == 1
    manager.release(first, Release.moved(chain.consume(first.ref)))
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    assert chain.coins[oid(0)][0] == 7  # six transactions, six distinct versions
    assert manager.stats().waits_total == 5


async def test_unknown_named_coin() -> None:
    manager = GasCoinManager(FakeChain([1]))
    with pytest.raises(GasCoinNotFound):
        await manager.acquire(oid(99))
    assert manager.stats().in_use == 0


async def test_named_lease_reads_the_coin_from_the_chain() -> None:
    chain = FakeChain([1_000])
    manager = GasCoinManager(chain)
    await manager.refresh()
    chain.coins[oid(0)] = (9, 1_000)  # used by another tool meanwhile
    lease = await manager.acquire(oid(0))
    assert lease.ref.version == 9 and lease.named


async def test_stale_release_withholds_coin_until_chain_shows_newer_version() -> None:
    chain = FakeChain([1_000, 1_000])
    manager = GasCoinManager(chain, min_refresh_interval=0)
    lease = await manager.acquire(None, 100)
    manager.release(lease, Release.unknown())  # timed out: may still execute
    assert manager.stats().suspect == 1
    for _ in range(3):  # only the other coin circulates, reloads or not
        other = await manager.acquire(None, 100)
        assert other.object_id != lease.object_id
        manager.release(other, Release.moved(chain.consume(other.ref)))
        await manager.refresh()
    assert manager.stats().suspect == 1
    chain.consume(lease.ref)  # the timed-out transaction did execute after all
    await manager.refresh()
    assert manager.stats().suspect == 0
    again = await manager.acquire(lease.object_id)
    assert again.ref.version == lease.ref.version + 1


async def test_reread_release_reloads_the_coin_before_reuse() -> None:
    chain = FakeChain([1_000])
    manager = GasCoinManager(chain, min_refresh_interval=3600)
    lease = await manager.acquire(None, 100)
    chain.consume(lease.ref)  # someone else moved the coin: the node calls our ref stale
    manager.release(lease, Release.reread())
    assert manager.stats().suspect == 0
    again = await manager.acquire(None, 100)  # reloads despite the rate limit
    assert again.ref == chain.ref(lease.object_id)
    assert again.ref.version == lease.ref.version + 1
    assert chain.list_calls == 2


async def test_epoch_change_frees_suspect_coins() -> None:
    chain = FakeChain([1_000])
    manager = GasCoinManager(chain, min_refresh_interval=0)
    lease = await manager.acquire(None, 100)
    manager.release(lease, Release.unknown())
    with pytest.raises(NoGasCoin):
        await manager.acquire(None, 100)
    manager.epoch_changed()  # equivocation locks end with the epoch
    again = await manager.acquire(None, 100)
    assert again.ref == lease.ref  # unchanged on chain, reusable now


async def test_named_waiter_on_suspect_coin_proceeds_when_chain_moves() -> None:
    chain = FakeChain([1_000])
    manager = GasCoinManager(chain)
    lease = await manager.acquire(oid(0))
    manager.release(lease, Release.unknown())
    waiter = asyncio.create_task(manager.acquire(oid(0)))
    await _until(lambda: manager.stats().waiting == 1)
    assert not waiter.done()
    chain.consume(lease.ref)  # the unknown transaction turns out to have executed
    manager.epoch_changed()
    got = await asyncio.wait_for(waiter, 5)
    assert got.ref.version == lease.ref.version + 1


async def test_context_manager_keeps_bound_leases_until_settled() -> None:
    chain = FakeChain([1_000])
    manager = GasCoinManager(chain)
    async with manager.lease(None, 10) as lease:
        pass
    assert lease.released and manager.stats().in_use == 0
    with pytest.raises(RuntimeError):
        async with manager.lease(None, 10) as bound:
            bound.bind("DIGEST1")
            raise RuntimeError("timeout while executing")
    assert not bound.released
    assert manager.find("DIGEST1") is bound
    assert manager.stats().in_use == 1
    with pytest.raises(GasCoinBusy):  # the one coin stays with the unknown transaction
        async with manager.lease(None, 10, wait=0):
            pass
    moved = chain.consume(bound.ref)
    manager.settle("DIGEST1", bound.object_id, Release.moved(moved))
    assert bound.released
    assert manager.find("DIGEST1") is None
    async with manager.lease(None, 10) as again:
        assert again.ref == moved  # the effects' version, without a reload


async def test_lease_wait_raises_gas_coin_busy_and_leaves_no_waiter() -> None:
    chain = FakeChain([1_000])
    manager = GasCoinManager(chain)
    first = await manager.acquire(oid(0))
    with pytest.raises(GasCoinBusy, match=oid(0)):
        # wait=0: the deadline passes as soon as the acquire parks (deterministic)
        async with manager.lease(oid(0), wait=0):
            pytest.fail("a leased coin was leased again")
    assert manager.stats().waiting == 0 and manager.stats().in_use == 1
    manager.release(first, Release.moved(chain.consume(first.ref)))
    async with manager.lease(oid(0), wait=5) as lease:  # free again: granted
        assert lease.ref == chain.ref(oid(0))
    assert manager.stats().in_use == 0


async def test_pool_never_leases_a_coin_held_by_a_recorded_intent() -> None:
    chain = FakeChain([5_000, 1_000])
    held = {oid(0)}
    manager = GasCoinManager(chain, held=held.__contains__, min_refresh_interval=0)
    for _ in range(3):  # reloads and releases do not put it back in circulation
        lease = await manager.acquire(None, 10)
        assert lease.object_id == oid(1)  # not the richest coin: a restart left it held
        manager.release(lease, Release.moved(chain.consume(lease.ref)))
        await manager.refresh()
    assert chain.coins[oid(0)][0] == 1  # never used
    held.clear()
    manager.wake()
    assert (await manager.acquire(None, 10)).object_id == oid(0)


async def test_pooled_waiter_parks_on_a_held_coin_until_the_hold_ends() -> None:
    """A held coin is busy, not gone: the pool waits for it instead of NoGasCoin, and
    takes the version the resolved transaction left (`settle` without a lease)."""
    chain = FakeChain([5_000])
    held = {oid(0)}
    manager = GasCoinManager(chain, held=held.__contains__, min_refresh_interval=0)
    waiter = asyncio.create_task(manager.acquire(None, 10))
    await _until(lambda: manager.stats().waiting == 1)
    manager.wake()  # still held: the waiter re-checks and parks again
    await _yield(20)
    assert not waiter.done() and manager.stats().waiting == 1
    moved = chain.consume(chain.ref(oid(0)))  # the recorded transaction executed
    manager.settle("RECORDED", oid(0), Release.moved(moved, spent=10))
    await _yield(20)
    assert not waiter.done()  # the hold book has not released it yet
    listings = chain.list_calls
    held.clear()
    manager.wake()
    lease = await asyncio.wait_for(waiter, 5)
    assert lease.object_id == oid(0) and lease.ref == moved
    assert chain.list_calls == listings  # the settled version was used, not re-listed


async def test_named_acquire_waits_until_the_hold_ends_and_wake_is_called() -> None:
    chain = FakeChain([1_000])
    held = {oid(0)}
    manager = GasCoinManager(chain, held=held.__contains__)
    with pytest.raises(GasCoinBusy):
        async with manager.lease(oid(0), wait=0):
            pytest.fail("a held coin was leased")
    waiter = asyncio.create_task(manager.acquire(oid(0)))
    await _until(lambda: manager.stats().waiting == 1)
    manager.wake()
    await _yield(20)
    assert not waiter.done()  # woken while still held: parks again
    held.clear()
    await _yield(20)
    assert not waiter.done()  # nobody said the hold went away yet
    manager.wake()
    lease = await asyncio.wait_for(waiter, 5)
    assert lease.named and lease.ref == chain.ref(oid(0))
    assert manager.stats().waiting == 0


async def test_pool_only_leases_allow_listed_coins() -> None:
    chain = FakeChain([100, 5_000, 1_000])
    # ids as a user writes them (short hex) are normalised
    allowed = GasCoinManager(chain, allow=[hex(0x1000), oid(2)], min_refresh_interval=0)
    first = await allowed.acquire(None, 50)
    second = await allowed.acquire(None, 50)
    assert {first.object_id, second.object_id} == {oid(0), oid(2)}
    assert allowed.stats().pool_size == 2
    with pytest.raises(GasCoinBusy):  # the richest coin is not on the list
        async with allowed.lease(None, 50, wait=0):
            pytest.fail("a coin outside the allow-list was leased")
    with pytest.raises(NoGasCoin):
        await GasCoinManager(chain, allow=[oid(0), oid(2)]).acquire(None, 2_000)
    everyone = GasCoinManager(chain, allow=[])  # empty: every coin of the sender
    assert (await everyone.acquire(None, 2_000)).object_id == oid(1)
    assert everyone.stats().pool_size == 3


async def test_double_release_is_an_error() -> None:
    chain = FakeChain([1_000])
    manager = GasCoinManager(chain)
    lease = await manager.acquire(None, 1)
    manager.release(lease, Release.unused())
    with pytest.raises(GasError):
        manager.release(lease, Release.unused())


async def test_wait_can_be_bounded_with_asyncio_timeout() -> None:
    chain = FakeChain([1_000])
    manager = GasCoinManager(chain)
    held = await manager.acquire(None, 1)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await manager.acquire(None, 1)
    assert manager.stats().waiting == 0
    manager.release(held, Release.unused())
    assert (await manager.acquire(None, 1)).ref == held.ref


@pytest.mark.parametrize("seed", list(range(10)))
async def test_many_tasks_never_share_a_coin(seed: int) -> None:
    """200 transactions over 4 coins, pooled and named, with random unknown outcomes."""
    rng = random.Random(seed)
    chain = FakeChain([10**9] * 4)
    manager = GasCoinManager(chain, min_refresh_interval=0)
    in_use: set[str] = set()
    peak = 0
    done = 0

    async def transaction(n: int) -> None:
        nonlocal peak, done
        named = oid(rng.randrange(4)) if n % 3 == 0 else None
        lease = await manager.acquire(named, 1_000)
        assert lease.object_id not in in_use, "coin leased twice at once"
        in_use.add(lease.object_id)
        peak = max(peak, len(in_use))
        for _ in range(rng.randrange(3)):
            await asyncio.sleep(0)
        roll = rng.random()
        in_use.discard(lease.object_id)
        if roll < 0.1:
            manager.release(lease, Release.unused())  # refused before execution: version unchanged
        elif roll < 0.2:
            chain.consume(lease.ref)  # executed, but the answer was lost
            manager.release(lease, Release.unknown())
        else:
            manager.release(lease, Release.moved(chain.consume(lease.ref), spent=10))
        done += 1

    async def refresher() -> None:
        while done < 200:
            await manager.refresh()
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(transaction(n)) for n in range(200)]
    refresh_task = asyncio.create_task(refresher())
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    await refresh_task
    assert done == 200
    assert 1 < peak <= 4  # concurrency happened and the pool bounded it
    stats = manager.stats()
    assert stats.in_use == 0 and stats.waiting == 0
    assert stats.leases_total == 200
    assert stats.waits_total > 0
    # FakeChain.consume asserts that no version was ever used twice


async def _yield(times: int) -> None:
    """Let every runnable task take a few steps (to show that something did NOT happen)."""
    for _ in range(times):
        await asyncio.sleep(0)


async def _until(predicate: object, limit_s: float = 5.0) -> None:
    """Let other tasks run until the predicate holds (no sleeping as synchronisation)."""
    assert callable(predicate)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0)
