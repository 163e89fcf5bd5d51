"""The chart's PrometheusRule, checked and evaluated by Prometheus' own promtool.

`promtool check rules` validates the rendered rules (PromQL, durations, annotation
templates). `promtool test rules` then evaluates every alert on input series whose names
and label sets are taken from a real scrape of a running operator (plus the target
labels a ServiceMonitor adds), so an alert on a metric or label the operator does not
expose cannot fire and fails its case: each alert fires under its condition and stays
silent otherwise.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from fault_support import Fleet, poll

from atoma_dev.operator_process import parse_samples
from helm_support import find, only, render, require_helm
from prometheus_support import run_promtool

ALERTS = {
    "AtomaResourcesStalled",
    "AtomaFollowerLagging",
    "AtomaGasBalanceLow",
    "AtomaEquivocationRefusals",
    "AtomaOperatorNotLeading",
    "AtomaChainErrors",
}
# What a ServiceMonitor's scrape adds to every series of the operator's pod.
TARGET = {
    "namespace": "atoma-system",
    "job": "atoma-operator-metrics",
    "instance": "10.0.0.7:8080",
    "pod": "atoma-operator-5d9c-abcde",
    "container": "operator",
    "endpoint": "http-metrics",
    "service": "atoma-operator-metrics",
}
NS = {"namespace": TARGET["namespace"]}


@pytest.fixture(scope="module", autouse=True)
def _helm() -> None:
    require_helm()


def _rule(values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    manifests = render({"prometheusRule": {"enabled": True, **(values or {})}})
    return only(manifests, "PrometheusRule")


def _alerts(rule: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}


# -- rendering -------------------------------------------------------------------------------


def test_off_by_default() -> None:
    assert find(render({}), "PrometheusRule") == []


def test_every_alert_has_summary_description_and_runbook() -> None:
    rule = _rule({"runbookUrl": "https://runbooks.example/atoma"})
    assert rule["metadata"]["namespace"] == "atoma-system"  # the release namespace
    alerts = _alerts(rule)
    assert set(alerts) == ALERTS
    for name, alert in alerts.items():
        notes = alert["annotations"]
        assert notes["summary"] and notes["description"], name
        assert name in notes["runbook"], name
        assert notes["runbook_url"] == f"https://runbooks.example/atoma#{name.lower()}"
        assert alert["labels"]["severity"] in {"warning", "critical"}


def test_labels_namespace_thresholds_and_switches_are_values() -> None:
    rule = _rule(
        {
            "namespace": "monitoring",
            "labels": {"release": "kube-prometheus-stack"},
            "alertLabels": {"team": "settlement"},
            "alerts": {
                "followerLag": {"thresholdSeconds": 120, "for": "1m"},
                "gasBalanceLow": {"thresholdMist": 5_000_000_000},
                "chainErrors": {"ratio": 0.2, "window": "10m"},
                "equivocationRefusals": {"enabled": False},
            },
        }
    )
    assert rule["metadata"]["namespace"] == "monitoring"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    alerts = _alerts(rule)
    assert "AtomaEquivocationRefusals" not in alerts
    assert all(a["labels"]["team"] == "settlement" for a in alerts.values())
    assert alerts["AtomaFollowerLagging"]["expr"].endswith("> 120")
    assert alerts["AtomaFollowerLagging"]["for"] == "1m"
    # a large integer stays an integer (Helm would print 5e+09)
    assert alerts["AtomaGasBalanceLow"]["expr"].endswith("< 5000000000")
    assert "[10m]" in alerts["AtomaChainErrors"]["expr"]
    assert alerts["AtomaChainErrors"]["expr"].endswith("> 0.2")


# -- promtool --------------------------------------------------------------------------------


def _rules_file(rule: Mapping[str, Any], path: Path, *, annotations: bool = True) -> Path:
    groups = copy.deepcopy(rule["spec"]["groups"])
    if not annotations:  # `test rules` compares annotations too; these cases check labels
        for group in groups:
            for r in group["rules"]:
                r.pop("annotations", None)
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def test_promtool_accepts_the_rendered_rules(tmp_path: Path) -> None:
    path = _rules_file(_rule({"runbookUrl": "https://runbooks.example/atoma"}), tmp_path / "r.yaml")
    result = run_promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


class Scraped:
    """Series identities from a real scrape: a series name and label set must exist
    there before a test case may feed values to it."""

    def __init__(self, text: str) -> None:
        self.samples = parse_samples(text)

    def series(
        self, name: str, values: str, *, replace: Mapping[str, str] = (), **labels: str
    ) -> dict[str, str]:
        key = name + (
            "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""
        )
        assert key in self.samples, f"{key} is not in the operator's scrape"
        merged = {**labels, **dict(replace), **TARGET}
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(merged.items()))
        return {"series": f"{name}{{{inner}}}", "values": values}


def _case(
    at: str, alert: str, series: list[dict[str, str]], firing: list[dict[str, str]]
) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": at, "alertname": alert, "exp_alerts": [{"exp_labels": f} for f in firing]}
        ],
    }


def _cases(s: Scraped) -> list[dict[str, Any]]:
    stl = {"kind": "StackSettlement"}
    stalled = dict(s.series("atoma_operator_resources", "0 0 1x30", condition="Stalled", **stl))
    calm = [
        s.series("atoma_operator_resources", "0x30", condition="Stalled", **stl),
        s.series("atoma_operator_resources", "4x30", condition="Reconciling", **stl),
        s.series("atoma_operator_resources", "9x30", condition="Ready", **stl),
    ]
    lag_growing = s.series("atoma_operator_follower_lag_seconds", "0+60x30")  # an outage
    lag_fine = s.series("atoma_operator_follower_lag_seconds", "0.3x30")
    gas_low = s.series("atoma_operator_gas_pool_balance_mist", "2000000000x5 400000000x30")
    gas_fine = s.series("atoma_operator_gas_pool_balance_mist", "2000000000x40")
    refused = s.series("atoma_operator_equivocation_refusals_total", "0x5 1x40")
    never = s.series("atoma_operator_equivocation_refusals_total", "0x40")
    standby = s.series("atoma_operator_leader", "1x5 0x30")
    leading = s.series("atoma_operator_leader", "1x30")
    epoch = {"method": "GetEpoch"}
    calls = s.series("atoma_operator_chain_rpc_calls_total", "0+10x30", **epoch)
    down = s.series("atoma_operator_chain_rpc_errors_total", "0+10x30", code="UNAVAILABLE", **epoch)
    no_errors = s.series(
        "atoma_operator_chain_rpc_errors_total", "0x30", code="UNAVAILABLE", **epoch
    )
    # NOT_FOUND is a lookup's normal answer: the label set of a scraped error series
    not_found = s.series(
        "atoma_operator_chain_rpc_errors_total",
        "0+10x30",
        replace={"code": "NOT_FOUND"},
        code="UNAVAILABLE",
        **epoch,
    )
    warn, crit = {"severity": "warning"}, {"severity": "critical"}
    return [
        # Stalled: fires after `for` (5m), silent before and when only others count
        _case("10m", "AtomaResourcesStalled", [stalled], [{**NS, **stl, **warn}]),
        _case("5m", "AtomaResourcesStalled", [stalled], []),
        _case("20m", "AtomaResourcesStalled", calm, []),
        # Follower lag > 300 s for 5m: the lag grows by 60 s a minute during an outage
        _case("15m", "AtomaFollowerLagging", [lag_growing], [{**NS, **warn}]),
        _case("8m", "AtomaFollowerLagging", [lag_growing], []),
        _case("20m", "AtomaFollowerLagging", [lag_fine], []),
        # Gas under 1 SUI for 10m
        _case("20m", "AtomaGasBalanceLow", [gas_low], [{**NS, **warn}]),
        _case("10m", "AtomaGasBalanceLow", [gas_low], []),
        _case("20m", "AtomaGasBalanceLow", [gas_fine], []),
        # Equivocation: any refusal within the window; clears once the window has passed
        _case("10m", "AtomaEquivocationRefusals", [refused], [{**NS, **warn}]),
        _case("30m", "AtomaEquivocationRefusals", [refused], []),
        _case("20m", "AtomaEquivocationRefusals", [never], []),
        # Not leading: the leader gauge drops to 0, or no replica is scraped at all
        _case("15m", "AtomaOperatorNotLeading", [standby], [{**NS, **crit}]),
        _case("20m", "AtomaOperatorNotLeading", [leading], []),
        _case("10m", "AtomaOperatorNotLeading", [calls], [crit]),
        # Chain errors: every call fails for 10m; NOT_FOUND answers do not count
        _case("20m", "AtomaChainErrors", [calls, down], [{**NS, **warn}]),
        _case("20m", "AtomaChainErrors", [calls, no_errors, not_found], []),
    ]


@pytest.mark.e2e
def test_each_alert_fires_on_its_condition_with_scraped_series(
    fleet: Fleet, tmp_path: Path
) -> None:
    op = fleet.operator()

    # the gas pool's balance exists once the follower listed the pool
    def gas_listed() -> str | None:
        text = op.metrics_text()
        return text if "atoma_operator_gas_pool_balance_mist " in text else None

    text = poll(gas_listed, timeout=30, what="the gas pool in /metrics")
    scraped = Scraped(text)
    _rules_file(_rule(), tmp_path / "rules.yaml", annotations=False)
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": _cases(scraped),
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = run_promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    tested = {t["alert_rule_test"][0]["alertname"] for t in tests["tests"]}
    assert tested == ALERTS
