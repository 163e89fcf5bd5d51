"""Gas-coin leasing: one owned coin version is never in two unfinalised transactions.

Two different transactions on one coin version race: one executes, the other is
refused (older Sui versions locked the coin until the epoch ended). Every new
transaction therefore takes a lease on its gas coin first (`lease`, a context
manager). A coin the user named is serialised (waiters queue on it); with none named,
a coin covering the budget is drawn from the pool: the sender's coins, or only those
of the `allow` list (settings `gas_coins`), loaded lazily and reloaded on exhaustion.
A coin held by a transaction recorded before a restart (`held`, answered by the hold
book) is never leased. A `Release` names what happened to the coin: it moved to a new
version (effects), it was not consumed, it must be re-read, or nobody knows
(`unknown`): such a coin is *suspect* and is not leased again until the chain shows
it at a newer version or the epoch changes. A lease bound to a digest whose outcome is
unknown stays held when its block exits; `settle(digest, release)` ends it once the
outcome is known. The pool size bounds concurrency.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from atoma_operator import metrics
from atoma_operator.sui.txbuild import normalize_id
from atoma_operator.sui.types import GasCoin, ObjectRef

log = logging.getLogger(__name__)


class GasCoinSource(Protocol):
    """The part of the chain gateway the manager reads coins from."""

    @property
    def sender(self) -> str: ...

    async def list_gas_coins(self, owner: str | None = None) -> list[GasCoin]: ...

    async def get_object_ref(self, object_id: str) -> ObjectRef | None: ...


class GasError(Exception):
    """Base of gas-coin manager errors."""


class NoGasCoin(GasError):
    """No coin of the sender can pay the budget (retry after funding the wallet)."""


class GasCoinBusy(GasError):
    """The wanted coin (or every pooled coin) stayed leased for the whole wait."""


class GasCoinNotFound(GasError):
    """The named gas coin does not exist (or is not an object the node knows)."""


class Fate(enum.Enum):
    """What a transaction did to its gas coin."""

    UNUSED = "unused"  # nothing executed: the leased version is still current
    MOVED = "moved"  # executed: the effects give the coin's new reference
    REREAD = "reread"  # nothing executed, but our reference may be out of date
    UNKNOWN = "unknown"  # nobody knows (or the coin is locked): withhold until newer


@dataclass(frozen=True)
class Release:
    """How a lease ends; build with the named constructors."""

    fate: Fate
    new_ref: ObjectRef | None = None
    spent: int | None = None

    @classmethod
    def unused(cls) -> Release:
        return cls(Fate.UNUSED)

    @classmethod
    def moved(cls, new_ref: ObjectRef, spent: int | None = None) -> Release:
        return cls(Fate.MOVED, new_ref, spent)

    @classmethod
    def reread(cls) -> Release:
        return cls(Fate.REREAD)

    @classmethod
    def unknown(cls) -> Release:
        return cls(Fate.UNKNOWN)


class _State(enum.Enum):
    FREE = "free"
    LEASED = "leased"
    SUSPECT = "suspect"  # outcome of its last transaction unknown: withheld


class GasLease:
    """The right to use one coin version as gas for one transaction."""

    __slots__ = ("_released", "acquired_at", "digest", "lease_id", "named", "object_id", "ref")

    def __init__(self, lease_id: int, ref: ObjectRef, *, named: bool, acquired_at: float) -> None:
        self.lease_id = lease_id
        self.object_id = ref.object_id
        self.ref = ref
        self.named = named
        self.acquired_at = acquired_at
        self.digest: str | None = None
        self._released = False

    @property
    def released(self) -> bool:
        return self._released

    def bind(self, digest: str) -> None:
        """Record that a signed transaction (this digest) now depends on the coin version."""
        self.digest = digest

    def __repr__(self) -> str:
        return (
            f"GasLease(#{self.lease_id} {self.object_id}@{self.ref.version}"
            f"{' named' if self.named else ''}{f' tx={self.digest}' if self.digest else ''})"
        )


@dataclass
class _Coin:
    object_id: str
    ref: ObjectRef | None
    balance: int | None
    pooled: bool
    state: _State = _State.FREE
    lease: GasLease | None = None
    suspect_version: int = -1
    named_waiters: int = 0
    checking: bool = False


@dataclass(frozen=True)
class GasStats:
    """Numbers for metrics."""

    in_use: int
    waiting: int
    suspect: int
    pool_size: int
    pool_balance: int
    usable: int  # pooled coins not withheld as suspect
    loaded: bool  # the pool was listed at least once (before that the numbers mean nothing)
    leases_total: int
    waits_total: int
    refreshes_total: int


class GasCoinManager:
    """Leases gas coins to transactions; see the module docstring for the rules.

    State changes are synchronous (single-threaded asyncio), so no lock is held across
    the chain reads; waiters park on futures and re-check after every change.
    """

    def __init__(
        self,
        source: GasCoinSource,
        *,
        owner: str | None = None,
        max_pool: int | None = None,
        min_refresh_interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        allow: Iterable[str] = (),
        held: Callable[[str], bool] = lambda _oid: False,
    ) -> None:
        self._source = source
        self._allow = frozenset(normalize_id(o) for o in allow) or None
        self._held = held
        self._owner = owner
        self._max_pool = max_pool
        self._min_refresh_interval = min_refresh_interval
        self._clock = clock
        self._coins: dict[str, _Coin] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._available: list[Callable[[], None]] = []
        self._refreshing: asyncio.Task[None] | None = None
        self._loaded = False
        self._last_refresh = float("-inf")
        self._ids = itertools.count(1)
        self._waiting = 0
        self._leases_total = 0
        self._waits_total = 0
        self._refreshes_total = 0

    # -- leasing -------------------------------------------------------------------------

    async def acquire(self, named: str | None = None, budget: int = 0) -> GasLease:
        """Lease the named coin, or a pool coin whose balance covers `budget`."""
        if named is not None:
            return await self._acquire_named(normalize_id(named))
        return await self._acquire_pooled(budget)

    @asynccontextmanager
    async def lease(
        self, named: str | None = None, budget: int = 0, *, wait: float | None = None
    ) -> AsyncIterator[GasLease]:
        """`acquire` (bounded by `wait` seconds: TimeoutError) as a context manager.

        Leaving the block frees an unreleased lease unchanged if no transaction was bound
        to it; a bound lease (`lease.bind(digest)`) stays held, because its transaction
        may still execute: `settle(digest, ...)` ends it once the outcome is known.
        """
        if wait is None:
            held = await self.acquire(named, budget)
        else:
            try:
                async with asyncio.timeout(wait):
                    held = await self.acquire(named, budget)
            except TimeoutError:
                which = f"gas coin {named}" if named else "every pooled gas coin"
                raise GasCoinBusy(f"{which} stayed busy for {wait:.0f}s") from None
        try:
            yield held
        finally:
            if not held.released and held.digest is None:
                self.release(held, Release.unused())

    def settle(self, digest: str, coin_id: str, how: Release) -> None:
        """The outcome of the transaction `digest` (paid with `coin_id`) is known: end its
        lease, or (recorded before a restart: no lease here) update what the pool knows."""
        lease = self.find(digest)
        if lease is not None:
            self.release(lease, how)
        else:
            self.coin_moved(coin_id, how)

    def coin_moved(self, object_id: str, how: Release) -> None:
        """A coin held by a transaction recorded before a restart (no lease here) was
        resolved: record what became of it, then wake the waiters."""
        coin = self._coins.get(normalize_id(object_id))
        if coin is not None and coin.lease is None:
            if how.fate is Fate.MOVED and how.new_ref is not None:
                coin.ref = _newer(coin.ref, how.new_ref)
                coin.state = _State.FREE
            elif how.fate is Fate.UNKNOWN:
                self._make_suspect(coin, coin.ref.version if coin.ref else 0)
            else:
                coin.state = _State.FREE
                if coin.pooled:
                    coin.ref = None  # re-read with the next listing
        self._notify()

    def wake(self) -> None:
        """Something outside changed (a hold went away): parked waiters re-check."""
        self._notify()

    def release(self, lease: GasLease, how: Release) -> None:
        """Give the coin back, saying what happened to it (see `Release`)."""
        if lease.released:
            raise GasError(f"{lease!r} was already released")
        coin = self._coins.get(lease.object_id)
        if coin is None or coin.lease is not lease:
            raise GasError(f"{lease!r} is not held by this manager")
        lease._released = True
        coin.lease = None
        if how.fate is Fate.MOVED and how.new_ref is not None:
            if how.new_ref.version <= lease.ref.version:
                log.warning(
                    "gas coin %s: effects version %d not above leased %d; withheld",
                    lease.object_id,
                    how.new_ref.version,
                    lease.ref.version,
                )
                self._make_suspect(coin, lease.ref.version)
            else:
                coin.ref = _newer(coin.ref, how.new_ref)
                coin.state = _State.FREE
        elif how.fate in (Fate.UNKNOWN, Fate.MOVED):
            self._make_suspect(coin, lease.ref.version)
        else:
            coin.state = _State.FREE
            if how.fate is Fate.REREAD:
                coin.ref = None  # the pool reloads it; a named lease reads it anyway
        if how.spent is not None and coin.balance is not None:
            coin.balance = max(0, coin.balance - how.spent)
        if not coin.pooled and coin.state is _State.FREE and coin.named_waiters == 0:
            # A named coin outside the pool: forget it; the next lease re-reads it anyway.
            del self._coins[coin.object_id]
        self._notify()

    def find(self, digest: str) -> GasLease | None:
        """The held lease bound to this transaction digest, if any."""
        for coin in self._coins.values():
            if coin.lease is not None and coin.lease.digest == digest:
                return coin.lease
        return None

    def epoch_changed(self) -> None:
        """Sui drops coin locks at an epoch change: suspect coins are re-read and reused."""
        for oid, coin in list(self._coins.items()):
            if coin.state is _State.SUSPECT:
                if coin.pooled:
                    coin.state, coin.ref = _State.FREE, None  # unknown until reloaded
                elif coin.named_waiters == 0:
                    del self._coins[oid]
                else:
                    coin.state = _State.FREE  # the named waiter re-reads it
        self._loaded = False  # the next pooled lease reloads the pool
        self._notify()

    # -- pool ----------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Reload the pool from the chain; concurrent callers share one listing.

        A listing already in flight when this is called may predate what the caller
        needs to see, so the caller then waits for the next one.
        """
        pending = self._refreshing
        if pending is not None and not pending.done():
            await asyncio.shield(pending)
            newer = self._refreshing
            if newer is not pending and newer is not None:
                await asyncio.shield(newer)  # began after this call: fresh enough
                return
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.get_running_loop().create_task(self._do_refresh())
        await asyncio.shield(self._refreshing)

    async def refresh_if_older(self, seconds: float) -> bool:
        """Reload the pool when its last listing is older than `seconds` (the follower
        calls this, so the balance metric stays current without a submission); True
        when it listed."""
        if self._clock() - self._last_refresh < seconds:
            return False
        await self.refresh()
        return True

    async def _do_refresh(self) -> None:
        coins = await self._source.list_gas_coins(self._owner)
        self._refreshes_total += 1
        self._last_refresh = self._clock()
        self._apply_listing(coins)
        self._loaded = True
        self._notify()

    def _apply_listing(self, listed: list[GasCoin]) -> None:
        if self._allow is not None:
            listed = [c for c in listed if normalize_id(c.ref.object_id) in self._allow]
        chosen = sorted(listed, key=lambda c: c.balance, reverse=True)
        if self._max_pool is not None:
            chosen = chosen[: self._max_pool]
        seen: set[str] = set()
        for item in chosen:
            oid = normalize_id(item.ref.object_id)
            seen.add(oid)
            ref = ObjectRef(oid, item.ref.version, item.ref.digest)
            coin = self._coins.get(oid)
            if coin is None:
                self._coins[oid] = _Coin(oid, ref, item.balance, pooled=True)
                continue
            coin.pooled = True
            if coin.balance is None:
                coin.balance = item.balance  # an estimate even if the listing lags
            if coin.state is _State.LEASED:
                continue
            if coin.state is _State.SUSPECT:
                if item.ref.version > coin.suspect_version:
                    coin.state = _State.FREE
                    coin.ref, coin.balance = ref, item.balance
                continue
            if coin.ref is None or item.ref.version >= coin.ref.version:
                coin.ref, coin.balance = ref, item.balance
        for oid, coin in list(self._coins.items()):
            if oid in seen or not coin.pooled:
                continue
            if coin.state is _State.FREE and coin.named_waiters == 0:
                del self._coins[oid]  # spent, merged or transferred away
            else:
                coin.pooled = False

    async def _acquire_pooled(self, budget: int) -> GasLease:
        waited = False
        refreshed = False
        while True:
            if not self._loaded:
                await self.refresh()
                refreshed = True
            coin = self._pick(budget)
            if coin is not None and coin.ref is not None:
                return self._grant(coin, coin.ref, named=False)
            # Coins that will come free without the chain's help: leased ones, and free
            # ones a named waiter is about to take (the pool leaves those to it).
            hopeful = any(
                c.pooled
                and (
                    c.state is _State.LEASED
                    or (c.state is _State.FREE and (c.named_waiters or self._held(c.object_id)))
                )
                and (c.balance is None or c.balance >= budget)
                for c in self._coins.values()
            )
            if hopeful:
                if not waited:
                    waited = True
                    self._waits_total += 1
                await self._wait()
                refreshed = False  # things changed meanwhile: a reload may help again
                continue
            unread = any(
                c.pooled and c.state is _State.FREE and c.ref is None for c in self._coins.values()
            )
            interval_passed = self._clock() - self._last_refresh >= self._min_refresh_interval
            if not refreshed and (unread or interval_passed):
                await self.refresh()
                refreshed = True
                continue
            raise NoGasCoin(self._exhausted_message(budget))

    def _pick(self, budget: int) -> _Coin | None:
        best: _Coin | None = None
        for coin in self._coins.values():
            if (
                coin.pooled
                and coin.state is _State.FREE
                and coin.ref is not None
                and coin.named_waiters == 0
                and not self._held(coin.object_id)
                and coin.balance is not None
                and coin.balance >= budget
                and (best is None or coin.balance > (best.balance or 0))
            ):
                best = coin
        return best

    def _exhausted_message(self, budget: int) -> str:
        owner = self._owner or self._source.sender
        pooled = [c for c in self._coins.values() if c.pooled]
        suspect = sum(1 for c in pooled if c.state is _State.SUSPECT)
        largest = max((c.balance or 0 for c in pooled), default=0)
        return (
            f"no gas coin of {owner} covers the budget of {budget} MIST "
            f"({len(pooled)} coins, largest {largest} MIST, {suspect} withheld as suspect)"
        )

    async def _acquire_named(self, oid: str) -> GasLease:
        waited = False
        coin = self._coins.get(oid)
        if coin is None:
            coin = self._coins[oid] = _Coin(oid, None, None, pooled=False)
        coin.named_waiters += 1
        try:
            recheck = True
            while coin.state is not _State.FREE or self._held(oid):
                if coin.state is _State.SUSPECT and recheck and not coin.checking:
                    # Once per change: the chain may show the coin newer by now.
                    recheck = False
                    await self._recheck_suspect(coin)
                    continue
                if not waited:
                    waited = True
                    self._waits_total += 1
                await self._wait()
                recheck = True
            self._coins.setdefault(oid, coin)
            lease = self._grant(coin, coin.ref or ObjectRef(oid, 0, ""), named=True)
        finally:
            coin.named_waiters -= 1
        current: ObjectRef | None = None
        try:
            current = await self._source.get_object_ref(oid)
        finally:
            if current is None:
                self.release(lease, Release.unused())
        if current is None:
            raise GasCoinNotFound(f"gas coin {oid} does not exist")
        lease.ref = _newer(coin.ref, current)
        coin.ref = lease.ref
        return lease

    async def _recheck_suspect(self, coin: _Coin) -> None:
        """Re-read a suspect coin: free again once the chain shows a newer version."""
        coin.checking = True
        try:
            current = await self._source.get_object_ref(coin.object_id)
        finally:
            coin.checking = False
        if (
            coin.state is _State.SUSPECT
            and current is not None
            and current.version > coin.suspect_version
        ):
            coin.state = _State.FREE
            coin.ref = _newer(coin.ref, current)
            self._notify()

    def _grant(self, coin: _Coin, ref: ObjectRef, *, named: bool) -> GasLease:
        assert coin.state is _State.FREE and coin.lease is None
        lease = GasLease(next(self._ids), ref, named=named, acquired_at=self._clock())
        coin.state = _State.LEASED
        coin.lease = lease
        self._leases_total += 1
        self._publish()
        return lease

    def _publish(self) -> None:
        metrics.GAS_LEASES.set(sum(1 for c in self._coins.values() if c.lease is not None))

    def _make_suspect(self, coin: _Coin, version: int) -> None:
        coin.state = _State.SUSPECT
        coin.suspect_version = max(coin.suspect_version, version)

    async def _wait(self) -> None:
        """Park until the next change (bound the wait with `asyncio.timeout` outside)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._waiting += 1
        try:
            await fut
        finally:
            self._waiting -= 1
            if fut in self._waiters:
                self._waiters.remove(fut)

    def on_available(self, listener: Callable[[], None]) -> None:
        """Called whenever a coin may have become usable (beside the in-process waiters:
        resources that gave up waiting are woken through this)."""
        self._available.append(listener)

    def _notify(self) -> None:
        """Wake every parked waiter (in arrival order); each re-checks its condition."""
        self._publish()
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        for listener in self._available:
            listener()

    # -- metrics -------------------------------------------------------------------------

    def stats(self) -> GasStats:
        pooled = [c for c in self._coins.values() if c.pooled]
        return GasStats(
            in_use=sum(1 for c in self._coins.values() if c.state is _State.LEASED),
            waiting=self._waiting,
            suspect=sum(1 for c in self._coins.values() if c.state is _State.SUSPECT),
            pool_size=len(pooled),
            pool_balance=sum(c.balance or 0 for c in pooled),
            usable=sum(1 for c in pooled if c.state is not _State.SUSPECT),
            loaded=self._refreshes_total > 0,
            leases_total=self._leases_total,
            waits_total=self._waits_total,
            refreshes_total=self._refreshes_total,
        )


def _newer(known: ObjectRef | None, other: ObjectRef) -> ObjectRef:
    """The later of two references to the same coin (indexes may lag our effects)."""
    if known is None or other.version >= known.version:
        return other
    return known
