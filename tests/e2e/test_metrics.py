"""/metrics and /healthz of a running operator, scraped during a real settle flow.

The operator serves one namespace (`-n`) so that no leftover resource of another test
(namespaces never finish deleting here) moves a counter: the deltas are exact. The
registry is process-wide, so every assertion compares a scrape with a baseline scrape.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

import pytest
from e2e_support import Localnet, apply, get, is_true, settlement, wait_until
from kopf.testing import KopfRunner
from prometheus_client.parser import text_string_to_metric_families

from atoma_dev.controlplane import ControlPlane

pytestmark = pytest.mark.e2e

STL = {"kind": "StackSettlement"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, str] | None:
    """(status, body), or None while nothing listens."""
    try:
        with _NO_PROXY.open(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return None


def _scrape(port: int) -> Samples | None:
    got = _get(f"http://127.0.0.1:{port}/metrics")
    if got is None or got[0] != 200:
        return None
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(got[1])
        for s in family.samples
    }


def _value(samples: Samples, name: str, labels: Mapping[str, str] | None = None) -> float:
    return samples.get((name, frozenset((labels or {}).items())), 0.0)


def _delta(before: Samples, after: Samples, name: str, labels: Mapping[str, str]) -> float:
    return _value(after, name, labels) - _value(before, name, labels)


def _operator_args(namespace: str, health_port: int) -> list[str]:
    return [
        "run", "--standalone", "-n", namespace,
        "--liveness", f"http://127.0.0.1:{health_port}/healthz",
        "-m", "atoma_operator.handlers",
    ]  # fmt: skip


def test_counters_move_during_a_settle_flow(
    crds: ControlPlane,
    localnet: Localnet,
    namespace: str,
    operator_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metrics_port, health_port = _free_port(), _free_port()
    monkeypatch.setenv("ATOMA_METRICS_PORT", str(metrics_port))
    monkeypatch.setenv("ATOMA_NAMESPACES", f'["{namespace}"]')  # with kopf's -n
    stacks = localnet.dev["stacks"][:3]
    assert len(stacks) == 3
    with KopfRunner(_operator_args(namespace, health_port), timeout=60):
        before = wait_until(lambda: _scrape(metrics_port), timeout=30, what="/metrics")
        health = wait_until(
            lambda: _get(f"http://127.0.0.1:{health_port}/healthz"), timeout=30, what="/healthz"
        )
        assert health[0] == 200
        apply(crds, settlement("metered", namespace, stacks))

        def ready() -> dict[str, Any] | None:
            obj = get(crds, "stl", namespace, "metered")
            return obj if is_true(obj, "Ready") else None

        obj = wait_until(ready, timeout=90, what="Ready")

        def followed() -> Samples | None:
            # The follower's gauges and event counts trail the status by a poll or two.
            now = _scrape(metrics_port)
            if now is None:
                return None
            ready_gauge = _value(now, "atoma_operator_resources", {**STL, "condition": "Ready"})
            settles = _delta(
                before,
                now,
                "atoma_operator_follower_events_total",
                {"event": "StackTrySettleEvent"},
            )
            return now if ready_gauge == 1 and settles == len(stacks) else None

        after = wait_until(followed, timeout=30, what="follower metrics")
        assert _get(f"http://127.0.0.1:{health_port}/healthz") == health  # still alive

    n = len(stacks)
    assert _delta(before, after, "atoma_operator_transactions_submitted_total", STL) == n
    assert _delta(before, after, "atoma_operator_transactions_succeeded_total", STL) == n
    # Gas: exactly what the status reports per transaction (rebates never count negative).
    gas = sum(max(int(s["gasUsedMist"]), 0) for s in obj["status"]["stacks"])
    assert gas > 0
    assert _delta(before, after, "atoma_operator_gas_spent_mist_total", STL) == gas
    # One submit->final observation per transaction, each a real (positive) duration.
    assert _delta(before, after, "atoma_operator_submit_to_final_seconds_count", STL) == n
    assert _delta(before, after, "atoma_operator_submit_to_final_seconds_sum", STL) > 0
    inf_bucket = {**STL, "le": "+Inf"}
    assert _delta(before, after, "atoma_operator_submit_to_final_seconds_bucket", inf_bucket) == n
    for condition in ("Reconciling", "Stalled"):
        assert _value(after, "atoma_operator_resources", {**STL, "condition": condition}) == 0
    aborted = [k for k in after if k[0] == "atoma_operator_transactions_aborted_total"]
    assert all(after[k] == before.get(k, 0.0) for k in aborted)
    assert 0 <= _value(after, "atoma_operator_follower_lag_seconds") < 30
    # Stopping the operator stops both endpoints.
    assert _get(f"http://127.0.0.1:{metrics_port}/metrics") is None
    assert _get(f"http://127.0.0.1:{health_port}/healthz") is None


def test_a_restarted_operator_serves_on_the_same_ports(
    crds: ControlPlane,
    localnet: Localnet,
    namespace: str,
    operator_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The metrics server is stopped at clean-up: a second operator in the process rebinds."""
    metrics_port, health_port = _free_port(), _free_port()
    monkeypatch.setenv("ATOMA_METRICS_PORT", str(metrics_port))
    args = [
        "run", "-A", "--standalone",
        "--liveness", f"http://127.0.0.1:{health_port}/healthz",
        "-m", "atoma_operator.handlers",
    ]  # fmt: skip
    for _ in range(2):
        with KopfRunner(args, timeout=60) as runner:
            wait_until(lambda: _scrape(metrics_port), timeout=30, what="/metrics")
            live = wait_until(
                lambda: _get(f"http://127.0.0.1:{health_port}/healthz"), timeout=30, what="/healthz"
            )
            assert live[0] == 200
        assert runner.exit_code == 0
        assert _get(f"http://127.0.0.1:{metrics_port}/metrics") is None
