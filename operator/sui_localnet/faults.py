"""Injected faults and call counters, so tests can break the node on purpose and count.

Faults are checked by every RPC before it does anything; counters record each call
per method and, separately, the calls that arrived while the node was "down".
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Faults:
    execute_latency: float = 0.0  # seconds every ExecuteTransaction waits before executing
    lose_responses: int = 0  # the next N executions run, then answer UNAVAILABLE
    drop_executions: int = 0  # the next N ExecuteTransaction calls never reach execution
    events_disabled: bool = False  # ListEvents answers as a node without RPC indexes
    events_scan_limit: int | None = None  # checkpoints one ListEvents call may scan
    pruning_floor: int = 0  # lowest available checkpoint; below it ListEvents: OUT_OF_RANGE
    _down_until: float | None = None  # monotonic deadline; inf = until cleared
    calls: Counter[str] = field(default_factory=Counter)
    calls_while_down: Counter[str] = field(default_factory=Counter)
    lost_responses: list[str] = field(default_factory=list)  # digests whose answer was dropped

    def set_unavailable(self, seconds: float | None) -> None:
        """Answer UNAVAILABLE for `seconds` (None = until `clear`)."""
        self._down_until = float("inf") if seconds is None else time.monotonic() + seconds

    @property
    def unavailable(self) -> bool:
        if self._down_until is None:
            return False
        if time.monotonic() >= self._down_until:
            self._down_until = None
            return False
        return True

    def record_call(self, method: str) -> bool:
        """Count the call; True when it must be refused as UNAVAILABLE."""
        self.calls[method] += 1
        if self.unavailable:
            self.calls_while_down[method] += 1
            return True
        return False

    def take_lost_response(self) -> bool:
        if self.lose_responses > 0:
            self.lose_responses -= 1
            return True
        return False

    def take_dropped_execution(self) -> bool:
        if self.drop_executions > 0:
            self.drop_executions -= 1
            return True
        return False

    def clear(self) -> None:
        self.execute_latency = 0.0
        self.lose_responses = 0
        self.drop_executions = 0
        self.events_disabled = False
        self.events_scan_limit = None
        self.pruning_floor = 0
        self._down_until = None

    def reset_counters(self) -> None:
        self.calls.clear()
        self.calls_while_down.clear()
        self.lost_responses.clear()

    def status(self) -> dict[str, Any]:
        return {
            "execute_latency": self.execute_latency,
            "lose_responses": self.lose_responses,
            "drop_executions": self.drop_executions,
            "unavailable": self.unavailable,
            "events_disabled": self.events_disabled,
            "events_scan_limit": self.events_scan_limit,
            "pruning_floor": self.pruning_floor,
            "calls": dict(self.calls),
            "calls_while_down": dict(self.calls_while_down),
            "lost_responses": list(self.lost_responses),
        }
