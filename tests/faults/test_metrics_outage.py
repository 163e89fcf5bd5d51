"""/metrics tells the truth while the chain is down, not only after a successful pass.

A real operator process (leader election on, as in a pod) against the stand-in; the
node answers UNAVAILABLE until the test clears the fault. Each scrape is what Prometheus
would read; every wait polls with a deadline.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from e2e_support import is_true
from fault_support import Fleet, poll

from atoma_dev.operator_process import OperatorProcess, metric_sum, parse_samples
from prometheus_support import check_metrics

STL = {"kind": "StackSettlement"}
Samples = Mapping[str, float]


def _has(samples: Samples, name: str, **labels: str) -> bool:
    wanted = {f'{k}="{v}"' for k, v in labels.items()}
    for key in samples:
        base, _, rest = key.partition("{")
        if base == name and wanted <= set(rest.rstrip("}").split(",")):
            return True
    return False


def _scrape(op: OperatorProcess) -> dict[str, float]:
    return parse_samples(op.metrics_text())


def _errors(samples: Samples) -> float:
    """Chain RPC errors other than NOT_FOUND (a lookup's normal answer)."""
    total = metric_sum(samples, "atoma_operator_chain_rpc_errors_total")
    return total - metric_sum(samples, "atoma_operator_chain_rpc_errors_total", code="NOT_FOUND")


@pytest.mark.e2e
def test_metrics_tell_the_truth_during_a_chain_outage(fleet: Fleet) -> None:
    stacks = fleet.add_stacks(1)
    op = fleet.operator()
    text = op.metrics_text()
    first = parse_samples(text)

    # From the first scrape: leadership, the build, the process, 0 samples of counters.
    assert first["atoma_operator_leader"] == 1
    (build,) = [k for k in first if k.startswith("atoma_operator_build_info{")]
    assert first[build] == 1 and 'version="' in build and 'python="' in build
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"):
        assert _has(first, name), name
    assert _has(first, "python_gc_collections_total", generation="0")
    assert first['atoma_operator_retries_total{kind="StackSettlement"}'] == 0
    assert first['atoma_operator_chain_rpc_errors_total{code="UNAVAILABLE",method="GetEpoch"}'] == 0
    assert first['atoma_operator_follower_failures_total{step="epoch"}'] == 0
    for condition in ("Ready", "Reconciling", "Stalled"):
        assert _has(first, "atoma_operator_resources", **STL, condition=condition)
    check_metrics(text)  # Prometheus' own linter on a real scrape

    # The follower lists the gas pool: balance and usable coins as the chain has them.
    coins = fleet.chain.admin(f"/coins/{fleet.chain.dev['address']}")["coins"]

    def gas_listed() -> dict[str, float] | None:
        now = _scrape(op)
        return now if _has(now, "atoma_operator_gas_pool_balance_mist") else None

    listed = poll(gas_listed, timeout=30, what="the gas pool balance")
    assert listed["atoma_operator_gas_pool_balance_mist"] == fleet.gas_balance()
    assert listed["atoma_operator_gas_pool_usable_coins"] == len(coins)

    # The node goes down; a resource arrives and waits.
    fleet.chain.admin("/faults", {"unavailable": True})  # until cleared
    try:
        before = _scrape(op)
        (name,) = fleet.settle_each(stacks)

        def waiting(obj: dict[str, object]) -> bool:
            return is_true(obj, "Reconciling") and not is_true(obj, "Ready")

        fleet.wait_for([name], waiting, timeout=60, what="Reconciling")

        def outage_seen() -> dict[str, float] | None:
            now = _scrape(op)
            reconciling = now[
                'atoma_operator_resources{condition="Reconciling",kind="StackSettlement"}'
            ]
            unavailable = metric_sum(
                now, "atoma_operator_chain_rpc_errors_total", method="GetEpoch", code="UNAVAILABLE"
            ) - metric_sum(
                before,
                "atoma_operator_chain_rpc_errors_total",
                method="GetEpoch",
                code="UNAVAILABLE",
            )
            return (
                now
                if reconciling == 1
                and unavailable > 0
                and now["atoma_operator_follower_lag_seconds"] > 1
                else None
            )

        during = poll(outage_seen, timeout=60, what="the outage in /metrics")
        lag = during["atoma_operator_follower_lag_seconds"]
        grown = poll(
            lambda: (s := _scrape(op))["atoma_operator_follower_lag_seconds"] >= lag + 1 and s,
            timeout=30,
            what="the follower lag to grow",
        )
        assert (
            grown['atoma_operator_resources{condition="Reconciling",kind="StackSettlement"}'] == 1
        )
        assert grown['atoma_operator_resources{condition="Ready",kind="StackSettlement"}'] == 0
        assert _errors(grown) > _errors(before)
        assert metric_sum(grown, "atoma_operator_follower_failures_total", step="epoch") > 0
        assert grown["atoma_operator_leader"] == 1
        # the last known balance stays; nothing pretends the pool is empty
        assert grown["atoma_operator_gas_pool_balance_mist"] == fleet.gas_balance()
        check_metrics(op.metrics_text())
    finally:
        fleet.chain.admin("/faults/clear", {})

    # Recovery: the resource settles, the gauges return, errors stop.
    fleet.wait_ready([name], timeout=120)

    def recovered() -> dict[str, float] | None:
        now = _scrape(op)
        ready = now['atoma_operator_resources{condition="Ready",kind="StackSettlement"}']
        reconciling = now[
            'atoma_operator_resources{condition="Reconciling",kind="StackSettlement"}'
        ]
        lag_now = now["atoma_operator_follower_lag_seconds"]
        return now if ready == 1 and reconciling == 0 and lag_now < 5 else None

    after = poll(recovered, timeout=60, what="the metrics to recover")
    assert after['atoma_operator_transactions_succeeded_total{kind="StackSettlement"}'] == 1
    epoch_calls = after['atoma_operator_chain_rpc_calls_total{method="GetEpoch"}']
    later = poll(
        lambda: (
            (s := _scrape(op))['atoma_operator_chain_rpc_calls_total{method="GetEpoch"}']
            >= epoch_calls + 3
            and s
        ),
        timeout=30,
        what="three more follower ticks",
    )
    assert _errors(later) == _errors(after), "chain errors still counted after the outage"
    assert later["atoma_operator_follower_lag_seconds"] < 5
