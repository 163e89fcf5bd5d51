"""submit->final latency: observed once, when a recorded transaction's effects become known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import cast

import pytest

from atoma_operator import metrics
from atoma_operator.reconcile.context import ReconcileContext
from atoma_operator.reconcile.submit import Executed, Unknown
from atoma_operator.reconcile.units import Verdict, _interpret
from atoma_operator.resources.submission import (
    GasCoinRef,
    PendingTransaction,
    TransactionProgress,
)
from atoma_operator.settings import Settings
from atoma_operator.sui.types import ExecutionStatus, TxOutcome

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
KIND = "LatencyTestKind"  # a label no other test uses: the registry is process-wide


def _ctx(now: datetime) -> ReconcileContext:
    # _interpret reads only settings and the clock.
    return cast(ReconcileContext, SimpleNamespace(settings=Settings(), clock=lambda: now))


def _progress(recorded_at: datetime) -> TransactionProgress:
    pending = PendingTransaction(
        digest="D1gest",
        tx_bytes="AAAA",
        signatures=["c2ln"],
        gas_coin=GasCoinRef(object_id="0x" + "ab" * 32, version=7, digest="C0in"),
        gas_budget=50_000_000,
        gas_price=1_000,
        attempt=1,
        recorded_at=recorded_at,
    )
    return TransactionProgress(attempts=1, pending=pending)


def _histogram() -> tuple[float, float]:
    """(count, sum) of the latency histogram for KIND."""
    count = metrics.REGISTRY.get_sample_value(
        "atoma_operator_submit_to_final_seconds_count", {"kind": KIND}
    )
    total = metrics.REGISTRY.get_sample_value(
        "atoma_operator_submit_to_final_seconds_sum", {"kind": KIND}
    )
    return count or 0.0, total or 0.0


@pytest.mark.parametrize("status", [ExecutionStatus.SUCCESS, ExecutionStatus.FAILURE])
def test_executed_observes_time_since_intent(status: ExecutionStatus) -> None:
    count0, sum0 = _histogram()
    progress = _progress(T0)
    outcome = TxOutcome(digest="D1gest", status=status, gas_used_mist=10)
    result = _interpret(
        Executed(outcome), progress, kind=KIND, label="x", ctx=_ctx(T0 + timedelta(seconds=2.5)),
    )  # fmt: skip
    count1, sum1 = _histogram()
    assert count1 - count0 == 1
    assert sum1 - sum0 == pytest.approx(2.5)
    assert progress.pending is None
    assert (result.verdict is Verdict.SUCCEEDED) == (status is ExecutionStatus.SUCCESS)


def test_unknown_outcome_observes_nothing() -> None:
    count0, _ = _histogram()
    progress = _progress(T0)
    _interpret(
        Unknown("timeout"), progress, kind=KIND, label="x", ctx=_ctx(T0 + timedelta(seconds=9)),
    )  # fmt: skip
    assert _histogram()[0] == count0
    assert progress.pending is not None  # still to be looked up: observed when it is known


def test_clock_skew_never_observes_a_negative_latency() -> None:
    count0, sum0 = _histogram()
    outcome = TxOutcome(digest="D1gest", status=ExecutionStatus.SUCCESS)
    _interpret(
        Executed(outcome), _progress(T0), kind=KIND, label="x",
        ctx=_ctx(T0 - timedelta(seconds=3)),
    )  # fmt: skip
    count1, sum1 = _histogram()
    assert (count1 - count0, sum1 - sum0) == (1, 0.0)
