"""Retry backoff whose state lives in status (attempts, lastFailureTime, nextRetryTime).

Kept in status, not in memory, so a restarted operator neither forgets a failing unit
nor hammers the chain: it waits out the recorded nextRetryTime.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import datetime, timedelta

from atoma_operator.resources.common import truncate
from atoma_operator.resources.submission import TransactionProgress


def delay_for(attempts: int, *, base: float, cap: float, jitter: float = 0.1) -> float:
    """Exponential: base * 2^(attempts-1), capped, with a little jitter against herds."""
    raw = min(cap, base * (2 ** max(0, attempts - 1)))
    return float(raw * (1 + random.uniform(-jitter, jitter)))


def record_failure(
    progress: TransactionProgress,
    reason: str,
    error: str,
    *,
    now: datetime,
    base: float,
    cap: float,
) -> None:
    """Note a retryable failure and schedule the unit's next try.

    The delay doubles with each consecutive failure, whether or not a transaction was
    built (a chain outage fails reads, not submissions). The previous delay is what
    status already holds (nextRetryTime - lastFailureTime), so no counter is needed and
    a restart keeps the backoff; a success clears nextRetryTime and starts over.
    """
    previous = (
        (progress.next_retry_time - progress.last_failure_time).total_seconds()
        if progress.next_retry_time is not None and progress.last_failure_time is not None
        else 0.0
    )
    delay = delay_for(progress.attempts, base=base, cap=cap)
    if previous > 0:
        delay = max(delay, min(cap, previous * 2))
    progress.reason = reason
    progress.last_error = truncate(error)
    progress.last_failure_time = now
    progress.next_retry_time = now + timedelta(seconds=delay)


def record_terminal(
    progress: TransactionProgress, reason: str, error: str, *, now: datetime
) -> None:
    """Note a failure no retry can fix: the unit stops here and says why."""
    progress.reason = reason
    progress.last_error = truncate(error)
    progress.last_failure_time = now
    progress.next_retry_time = None


def clear_failure(progress: TransactionProgress) -> None:
    progress.reason = None
    progress.last_error = None
    progress.next_retry_time = None  # the next failure starts the backoff over


def wait_seconds(progress: TransactionProgress, now: datetime) -> float:
    """Seconds until the unit may be tried again (0 when it may go now)."""
    if progress.next_retry_time is None:
        return 0.0
    return max(0.0, (progress.next_retry_time - now).total_seconds())


BUSY_RECHECK_SECONDS = 30.0
"""A unit waiting for its badge or a coin is woken when that is released; this is only
the safety net should a wake-up be missed (e.g. the holder belonged to another process)."""


def next_pass_in(progress: TransactionProgress, now: datetime) -> float:
    """When the unit wants the next pass: its backoff, or the safety net while it waits
    its turn for a badge or coin (no busy loop, no status write per try)."""
    if progress.waits_for:
        return BUSY_RECHECK_SECONDS
    return max(wait_seconds(progress, now), 0.5)


def waiting_on(entries: Iterable[TransactionProgress]) -> frozenset[str]:
    """Everything the resource's units found busy in this pass (see `waits_for`)."""
    return frozenset().union(*(e.waits_for for e in entries))
