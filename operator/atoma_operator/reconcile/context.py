"""What a reconcile pass needs from the outside world, gathered in one object.

The state machines take this instead of globals so unit tests can pass fakes (an
in-memory gateway, a dict of ConfigMaps) and the handlers pass the real ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from atoma_operator.atoma.calls import RANDOM_OBJECT_ID
from atoma_operator.reconcile.holds import HoldBook
from atoma_operator.reconcile.tickets import TicketReader
from atoma_operator.settings import Settings
from atoma_operator.sui.errors import ChainUnavailable
from atoma_operator.sui.gas import GasCoinManager
from atoma_operator.sui.txbuild import normalize_id
from atoma_operator.sui.types import ChainGateway, ObjectRef, SharedObjectArg

if TYPE_CHECKING:
    from atoma_operator.policy import PolicyGate

ReadValue = Callable[[str, str, str, str], Awaitable[bytes]]
"""(namespace, kind "ConfigMap"|"Secret", name, key) -> raw bytes; raises LookupError."""
ReadStackHash = Callable[[int], Awaitable[bytes | None]]
"""stack_small_id -> stacks.total_hash (None: no row); raises StateDatabaseUnavailable."""


class KeyedLocks:
    """One asyncio.Lock per key (a stack id, a badge), kept only while someone holds or
    waits for it: memory stays bounded by the work in flight, not by every key seen."""

    def __init__(self) -> None:
        self._locks: dict[object, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def __call__(self, key: object) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


BADGE_QUEUE = 2
"""At most this many resources hold or wait for a badge: the one submitting and the next
in line, which takes the badge the moment it is released (the units of one resource wait
together). Everyone else is parked, holding no worker, and woken first come, first
served when the badge is released."""


@dataclass
class ReconcileContext:
    gateway: ChainGateway
    gas: GasCoinManager
    settings: Settings
    tickets: TicketReader
    read_value: ReadValue
    submit_slots: asyncio.Semaphore
    locks: KeyedLocks = field(default_factory=KeyedLocks)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    read_stack_hash: ReadStackHash | None = None
    """stacks.total_hash from the node's state database (None: not configured)."""
    may_submit: Callable[[], bool] = field(default=lambda: True)
    """False once this operator lost its leader Lease: nothing new may be sent."""
    holds: HoldBook = field(default_factory=HoldBook)
    """Which unresolved transaction holds which badge and gas coin (see reconcile.holds)."""
    policy: PolicyGate | None = None
    """SettlementPolicy enforcement; None: none (unit tests, ATOMA_POLICY_ENFORCED=false)."""

    def confirm_expiry(self, digest: str) -> bool:
        """Enough lookups, over a long enough window, missed a transaction whose gas coin
        moved on: only then is it called expired (a lagging node misses it briefly)."""
        checks, seconds = self.holds.expiry_evidence(digest)
        s = self.settings
        return checks >= s.expiry_confirmations and seconds >= s.expiry_window_seconds

    _shared: dict[tuple[str, bool], SharedObjectArg] = field(default_factory=dict)

    async def shared(self, object_id: str, *, mutable: bool) -> SharedObjectArg:
        """A shared object argument, read once: initial shared versions never change.

        Resolved on first use rather than at start-up, so the operator starts (and
        reports ChainUnavailable on its resources) while the chain is unreachable.
        """
        key = (object_id, mutable)
        if key not in self._shared:
            self._shared[key] = await self.gateway.shared_object(object_id, mutable=mutable)
        return self._shared[key]

    async def db(self) -> SharedObjectArg:
        assert self.settings.atoma_db_id is not None
        return await self.shared(self.settings.atoma_db_id, mutable=True)

    async def random(self) -> SharedObjectArg:
        return await self.shared(RANDOM_OBJECT_ID, mutable=False)

    @property
    def package_id(self) -> str:
        assert self.settings.package_id is not None
        return self.settings.package_id

    _badge_refs: dict[str, ObjectRef] = field(default_factory=dict)
    badge_lines: dict[str, dict[object, int]] = field(default_factory=dict)
    """Per badge: the resources (and how many of their units) in its line."""

    @asynccontextmanager
    async def badge_line(self, badge_id: str, owner: object) -> AsyncIterator[None]:
        line = self.badge_lines.setdefault(badge_id, {})
        line[owner] = line.get(owner, 0) + 1
        try:
            yield
        finally:
            line[owner] -= 1
            if not line[owner]:
                del line[owner]
            if not line:
                self.badge_lines.pop(badge_id, None)

    async def badge_ref(self, object_id: str) -> ObjectRef:
        """The badge's current reference: every transaction bumps its version (it is an
        owned input). Taken from our own last transaction's effects when we know them
        (one chain read less inside the badge's turn), else read under the badge's lock."""
        oid = normalize_id(object_id)
        cached = self._badge_refs.get(oid)
        if cached is not None:
            return cached
        ref = await self.gateway.get_object_ref(object_id)
        if ref is None:
            raise ChainUnavailable(f"node badge {object_id} not found on chain")
        return ref

    def badge_moved(self, object_id: str, ref: ObjectRef | None) -> None:
        """Our transaction on the badge executed (`ref`: its next version), or its fate
        is not known (None: read the badge again before the next build)."""
        oid = normalize_id(object_id)
        if ref is None:
            self._badge_refs.pop(oid, None)
        else:
            self._badge_refs[oid] = ref

    _reference_price: int | None = None

    async def gas_price(self, requested: int | None) -> int:
        """The resource's price, else the configured one, else the reference gas price
        (read once per epoch: the follower calls `epoch_changed`)."""
        if requested is not None:
            return requested
        if self.settings.gas_price is not None:
            return self.settings.gas_price
        if self._reference_price is None:
            self._reference_price = await self.gateway.reference_gas_price()
        return self._reference_price

    def epoch_changed(self) -> None:
        self._reference_price = None
        self.gas.epoch_changed()
