"""The operator's registry: what exists before the first event, what is read at scrape
time (from the operator's event loop, while the HTTP server scrapes from its thread),
chain-RPC errors by code, leadership, and the README's table of metrics."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from grpclib.const import Status
from kubernetes.client import ApiClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from atoma_operator import metrics
from atoma_operator.leader import LeaderElector
from atoma_operator.registry import StackRegistry
from atoma_operator.sui import gateway
from atoma_operator.sui.errors import ChainError, ChainUnavailable
from atoma_operator.sui.gas import GasCoinManager
from atoma_operator.sui.types import GasCoin, ObjectRef

README = Path(__file__).resolve().parents[2] / "README.md"


def _scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Exactly what GET /metrics returns, parsed."""
    text = generate_latest(metrics.REGISTRY).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _get(name: str, **labels: str) -> float | None:
    return _scrape().get((name, frozenset(labels.items())))


class OperatorLoop:
    """An event loop in a thread of its own, like the operator's next to the HTTP server."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, fn: Any) -> Any:
        """fn() on the loop, as the operator's own code would run it."""

        async def call() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout=5)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)

    def tracking_one_reconciling_attestation(self) -> StackRegistry:
        """A registry knowing one (status-less, so Reconciling) Attestation, tracked."""
        registry = StackRegistry()
        registry.observe(
            "Attestation",
            "ADDED",
            {"metadata": {"namespace": "n", "name": "x"}, "spec": {"stackSmallIds": [2]}},
        )
        self.run(lambda: metrics.track(conditions=registry.condition_counts, gas=None))
        assert _get("atoma_operator_resources", kind="Attestation", condition="Reconciling") == 1
        return registry


@pytest.fixture
def operator_loop() -> Iterator[OperatorLoop]:
    running = OperatorLoop()
    try:
        yield running
    finally:
        running.stop()
        running.loop.close()
        metrics.track(conditions=None, gas=None)


def test_counters_have_their_zero_samples_before_any_event() -> None:
    for kind in metrics.KINDS:
        for name in (
            "atoma_operator_transactions_submitted_total",
            "atoma_operator_transactions_succeeded_total",
            "atoma_operator_retries_total",
            "atoma_operator_gas_spent_mist_total",
            "atoma_operator_submit_to_final_seconds_count",
        ):
            assert _get(name, kind=kind) is not None, (name, kind)
    for method in metrics.RPC_METHODS:
        assert _get("atoma_operator_chain_rpc_calls_total", method=method) is not None
        for code in metrics.OUTAGE_CODES:
            assert (
                _get("atoma_operator_chain_rpc_errors_total", method=method, code=code) is not None
            )
    for step in metrics.FOLLOWER_STEPS:
        assert _get("atoma_operator_follower_failures_total", step=step) is not None
    assert _get("atoma_operator_equivocation_refusals_total") is not None


def test_build_info_and_the_standard_collectors() -> None:
    scraped = _scrape()
    (build,) = [dict(labels) for name, labels in scraped if name == "atoma_operator_build_info"]
    assert set(build) == {"version", "python", "kopf", "pysui", "prometheus_client"}
    assert build["version"] != "unknown" and re.fullmatch(r"\d+\.\d+\.\d+", build["python"])
    names = {name for name, _ in scraped}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"} <= names
    assert "python_gc_collections_total" in names


def test_resources_are_counted_at_scrape_time_on_the_operators_loop(
    operator_loop: OperatorLoop,
) -> None:
    registry = StackRegistry()
    operator_loop.run(lambda: metrics.track(conditions=registry.condition_counts, gas=None))
    for condition in metrics.CONDITIONS:  # zeros while nothing is known
        assert _get("atoma_operator_resources", kind="Attestation", condition=condition) == 0

    def body(name: str, conditions: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "metadata": {"namespace": "ns", "name": name},
            "spec": {"stackSmallIds": [1]},
            "status": {"conditions": conditions},
        }

    reconciling = [{"type": "Reconciling", "status": "True"}, {"type": "Ready", "status": "False"}]
    operator_loop.run(lambda: registry.observe("StackSettlement", "ADDED", body("a", reconciling)))
    assert _get("atoma_operator_resources", kind="StackSettlement", condition="Reconciling") == 1
    stalled = [{"type": "Stalled", "status": "True"}, {"type": "Ready", "status": "False"}]
    operator_loop.run(lambda: registry.observe("StackSettlement", "MODIFIED", body("a", stalled)))
    assert _get("atoma_operator_resources", kind="StackSettlement", condition="Reconciling") == 0
    assert _get("atoma_operator_resources", kind="StackSettlement", condition="Stalled") == 1


def test_a_stopped_operator_reports_no_stale_state(operator_loop: OperatorLoop) -> None:
    operator_loop.tracking_one_reconciling_attestation()
    operator_loop.stop()
    assert _get("atoma_operator_resources", kind="Attestation", condition="Reconciling") == 0


def test_a_busy_loop_reports_its_last_known_counts(
    operator_loop: OperatorLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator_loop.tracking_one_reconciling_attestation()
    monkeypatch.setattr(metrics, "SCRAPE_READ_TIMEOUT_SECONDS", 0.05)
    release = threading.Event()
    operator_loop.loop.call_soon_threadsafe(release.wait, 5)  # a pass hogging the loop
    try:
        assert _get("atoma_operator_resources", kind="Attestation", condition="Reconciling") == 1
    finally:
        release.set()


class _Coins:
    sender = "0x" + "1" * 64

    def __init__(self, balances: list[int]) -> None:
        self.coins = [
            GasCoin(ObjectRef("0x" + f"{i + 1:064x}", 1, "d"), b) for i, b in enumerate(balances)
        ]

    async def list_gas_coins(self, owner: str | None = None) -> list[GasCoin]:
        return self.coins

    async def get_object_ref(self, object_id: str) -> ObjectRef | None:
        return None


def test_gas_pool_is_absent_until_listed_then_current(
    operator_loop: OperatorLoop,
) -> None:
    gas = GasCoinManager(_Coins([3_000, 5_000]))
    operator_loop.run(lambda: metrics.track(conditions=None, gas=gas.stats))
    assert _get("atoma_operator_gas_pool_balance_mist") is None  # unknown, not 0
    asyncio.run_coroutine_threadsafe(gas.refresh(), operator_loop.loop).result(timeout=5)
    assert _get("atoma_operator_gas_pool_balance_mist") == 8_000
    assert _get("atoma_operator_gas_pool_usable_coins") == 2


def test_rpc_errors_are_counted_by_method_and_grpc_code() -> None:
    def count(code: str) -> float:
        return _get("atoma_operator_chain_rpc_errors_total", method="GetObject", code=code) or 0.0

    before = {c: count(c) for c in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "NOT_FOUND", "UNKNOWN")}
    with pytest.raises(gateway._RpcFailure):
        gateway._raise_failure("GetObject", (Status.NOT_FOUND, "no such object", None))
    with pytest.raises(ChainUnavailable):
        gateway._unavailable("GetObject", ConnectionRefusedError("refused"))
    with pytest.raises(ChainUnavailable):
        gateway._unavailable("GetObject", TimeoutError())
    with pytest.raises(ChainError):
        gateway._raise_failure("GetObject", ("something odd",))
    after = {c: count(c) for c in before}
    assert {c: after[c] - before[c] for c in before} == {
        "UNAVAILABLE": 1,
        "DEADLINE_EXCEEDED": 1,
        "NOT_FOUND": 1,
        "UNKNOWN": 1,
    }


def test_leader_gauge_follows_the_elector() -> None:
    elector = LeaderElector(ApiClient(), namespace="ns", name="lease", identity="me")
    try:
        assert _get("atoma_operator_leader") == 0  # a standby until it holds the Lease
        elector.is_leader = True
        assert _get("atoma_operator_leader") == 1
        elector.is_leader = False
        assert _get("atoma_operator_leader") == 0
    finally:
        metrics.report_leadership(lambda: True)  # leader election off: this replica acts


def test_readme_documents_every_metric() -> None:
    text = README.read_text()
    missing = [name for name in metrics.catalogue() if f"`{name}" not in text]
    assert missing == []
