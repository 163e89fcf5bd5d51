"""Gas-coin manager: one coin version per unfinalised transaction, under concurrency."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable

import pytest

from atoma_operator.sui.gas import GasCoinManager, GasCoinNotFound, GasError, NoGasCoin
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
    manager.release(lease, chain.consume(lease.ref))
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
        manager.release(lease, chain.consume(lease.ref))

    tasks = [asyncio.create_task(waiter(n)) for n in range(5)]
    await _until(lambda: manager.stats().waiting == 5)
    assert manager.stats().in_use == 1
    manager.release(first, chain.consume(first.ref))
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
    manager.release(lease, None, stale=True)  # timed out: may still execute
    assert manager.stats().suspect == 1
    for _ in range(3):  # only the other coin circulates, reloads or not
        other = await manager.acquire(None, 100)
        assert other.object_id != lease.object_id
        manager.release(other, chain.consume(other.ref))
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
    manager.release(lease, None, reread=True)
    assert manager.stats().suspect == 0
    again = await manager.acquire(None, 100)  # reloads despite the rate limit
    assert again.ref == chain.ref(lease.object_id)
    assert again.ref.version == lease.ref.version + 1
    assert chain.list_calls == 2


async def test_epoch_change_frees_suspect_coins() -> None:
    chain = FakeChain([1_000])
    manager = GasCoinManager(chain, min_refresh_interval=0)
    lease = await manager.acquire(None, 100)
    manager.release(lease, None, stale=True)
    with pytest.raises(NoGasCoin):
        await manager.acquire(None, 100)
    manager.epoch_changed()  # equivocation locks end with the epoch
    again = await manager.acquire(None, 100)
    assert again.ref == lease.ref  # unchanged on chain, reusable now


async def test_named_waiter_on_suspect_coin_proceeds_when_chain_moves() -> None:
    chain = FakeChain([1_000])
    manager = GasCoinManager(chain)
    lease = await manager.acquire(oid(0))
    manager.release(lease, None, stale=True)
    waiter = asyncio.create_task(manager.acquire(oid(0)))
    await _until(lambda: manager.stats().waiting == 1)
    assert not waiter.done()
    chain.consume(lease.ref)  # the unknown transaction turns out to have executed
    manager.epoch_changed()
    got = await asyncio.wait_for(waiter, 5)
    assert got.ref.version == lease.ref.version + 1


async def test_context_manager_keeps_bound_leases() -> None:
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
    manager.release(bound, chain.consume(bound.ref))
    assert manager.find("DIGEST1") is None


async def test_adopt_holds_a_recorded_coin_version() -> None:
    chain = FakeChain([1_000, 1_000])
    manager = GasCoinManager(chain)
    recorded = chain.ref(oid(0))
    adopted = await manager.adopt(recorded, "DIGEST9")
    assert adopted.ref == recorded and adopted.digest == "DIGEST9"
    pooled = await manager.acquire(None, 10)
    assert pooled.object_id == oid(1)  # the adopted coin is not in circulation
    assert manager.find("DIGEST9") is adopted


async def test_double_release_is_an_error() -> None:
    chain = FakeChain([1_000])
    manager = GasCoinManager(chain)
    lease = await manager.acquire(None, 1)
    manager.release(lease, None)
    with pytest.raises(GasError):
        manager.release(lease, None)


async def test_wait_can_be_bounded_with_asyncio_timeout() -> None:
    chain = FakeChain([1_000])
    manager = GasCoinManager(chain)
    held = await manager.acquire(None, 1)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await manager.acquire(None, 1)
    assert manager.stats().waiting == 0
    manager.release(held, None)
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
            manager.release(lease, None)  # refused before execution: version unchanged
        elif roll < 0.2:
            chain.consume(lease.ref)  # executed, but the answer was lost
            manager.release(lease, None, stale=True)
        else:
            manager.release(lease, chain.consume(lease.ref), spent=10)
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


async def _until(predicate: object, limit_s: float = 5.0) -> None:
    """Let other tasks run until the predicate holds (no sleeping as synchronisation)."""
    assert callable(predicate)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0)
