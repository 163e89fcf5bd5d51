"""Consensus latency for transactions with shared objects (off unless configured).

On Sui a transaction that touches a shared object (every Atoma `db` call uses the shared
AtomaDb) is ordered by consensus before it executes: roughly 0.4 s on mainnet. Without
that wait the stand-in answers in milliseconds, so a benchmark against it cannot say how
close a client gets to what a real chain allows (one transaction per badge at a time,
so about badges ÷ latency transactions per second).

The wait is drawn per execution, uniformly from `mean ± jitter` (never below zero), from
a seeded generator so a run is reproducible. It is awaited outside every lock: two
transactions with disjoint owned objects (different badges and gas coins) wait side by
side; only owned-object conflicts serialise, as on Sui. `sleep` is injectable so tests
can observe the waits without measuring time.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class SharedObjectLatency:
    """The model's settings, its generator and its counters (for tests and the bench)."""

    mean: float = 0.0  # seconds; 0 = off
    jitter: float = 0.0  # seconds either side of the mean
    seed: int = 0
    sleep: Sleep = asyncio.sleep
    applied: int = 0  # executions that waited
    total_seconds: float = 0.0  # sum of the drawn waits
    in_flight: int = 0  # executions waiting right now
    max_in_flight: int = 0  # most executions ever waiting together
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.configure(mean=self.mean, jitter=self.jitter, seed=self.seed)

    @property
    def enabled(self) -> bool:
        return self.mean > 0

    def configure(
        self, *, mean: float | None = None, jitter: float | None = None, seed: int | None = None
    ) -> None:
        """Change the settings (None keeps one); a new seed restarts the generator."""
        new_mean = self.mean if mean is None else float(mean)
        new_jitter = self.jitter if jitter is None else float(jitter)
        if new_mean < 0 or new_jitter < 0:
            raise ValueError(
                f"latency mean and jitter must be >= 0 seconds (got {new_mean}, {new_jitter})"
            )
        self.mean, self.jitter = new_mean, new_jitter
        if seed is not None or not hasattr(self, "_rng"):
            self.seed = self.seed if seed is None else int(seed)
            self._rng = random.Random(self.seed)

    def draw(self) -> float:
        """The next wait in seconds (0 when off, without consuming randomness)."""
        if not self.enabled:
            return 0.0
        if self.jitter == 0:
            return self.mean
        return max(0.0, self._rng.uniform(self.mean - self.jitter, self.mean + self.jitter))

    async def wait(self) -> float:
        """Wait one drawn latency (counted); returns the seconds drawn."""
        seconds = self.draw()
        if seconds <= 0:
            return 0.0
        self.applied += 1
        self.total_seconds += seconds
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self.sleep(seconds)
        finally:
            self.in_flight -= 1
        return seconds

    def reset_counters(self) -> None:
        self.applied = 0
        self.total_seconds = 0.0
        self.max_in_flight = self.in_flight

    def status(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "jitter": self.jitter,
            "seed": self.seed,
            "applied": self.applied,
            "total_seconds": self.total_seconds,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
        }
