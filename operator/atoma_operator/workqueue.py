"""A keyed work queue with delays, as client-go's workqueue: each key is at most once in
the queue and at most once in the hands of a worker; a key added while it is being
worked on runs again right after. Plain asyncio, no Kubernetes: unit-testable.

Memory is per active key only (queued, delayed, running or parked): a key nobody asked
for costs nothing, which is what keeps ten thousand finished resources free.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

log = logging.getLogger(__name__)


class WorkQueue(Generic[K]):
    def __init__(self, work: Callable[[K], Awaitable[None]], *, workers: int) -> None:
        self._work = work
        self._workers = workers
        self._ready: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()  # in _ready
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._running: set[K] = set()
        self._again: dict[K, float] = {}  # added while running: delay for the rerun
        self._parked: dict[Hashable, deque[K]] = {}  # waiting for a named thing
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"atoma-worker-{i}")
            for i in range(self._workers)
        ]

    async def stop(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def add(self, key: K, delay: float = 0.0) -> None:
        """Work on `key` after `delay` seconds (sooner if it is already due sooner)."""
        if key in self._running:
            self._again[key] = min(self._again.get(key, math.inf), delay)
            return
        if key in self._queued:
            return
        if delay <= 0:
            self._cancel_timer(key)
            self._queued.add(key)
            self._ready.put_nowait(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        handle = self._timers.get(key)
        if handle is not None:
            if handle.when() <= when:
                return
            handle.cancel()
        self._timers[key] = loop.call_at(when, self._due, key)

    def park(self, key: K, on: Iterable[Hashable]) -> None:
        """Also wake `key` (first come, first served) when one of `on` is released."""
        for thing in on:
            waiters = self._parked.setdefault(thing, deque())
            if key not in waiters:
                waiters.append(key)

    def wake(self, thing: Hashable, *, count: int = 1) -> None:
        """`thing` was released: hand it to the first `count` keys parked on it."""
        waiters = self._parked.get(thing)
        while waiters and count > 0:
            self.add(waiters.popleft())
            count -= 1
        if waiters is not None and not waiters:
            del self._parked[thing]

    def forget(self, key: K) -> None:
        """Drop everything about `key` (deleted, or finished for good)."""
        self._cancel_timer(key)
        self._again.pop(key, None)
        for thing in [t for t, w in self._parked.items() if key in w]:
            self._parked[thing].remove(key)
            if not self._parked[thing]:
                del self._parked[thing]

    def parked_things(self) -> list[Hashable]:
        return list(self._parked)

    def is_active(self, key: K) -> bool:
        return key in self._queued or key in self._running or key in self._timers

    def sizes(self) -> dict[str, int]:
        return {
            "queued": len(self._queued),
            "delayed": len(self._timers),
            "running": len(self._running),
            "parked": sum(len(w) for w in self._parked.values()),
        }

    def _cancel_timer(self, key: K) -> None:
        handle = self._timers.pop(key, None)
        if handle is not None:
            handle.cancel()

    def _due(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def _worker(self) -> None:
        while True:
            key = await self._ready.get()
            self._queued.discard(key)
            self._running.add(key)
            try:
                await self._work(key)
            except Exception:  # the work function handles its errors; this is the backstop
                log.exception("work on %r failed", key)
            finally:
                self._running.discard(key)
                again = self._again.pop(key, None)
                if again is not None:
                    self.add(key, again)
