"""The chart's Grafana dashboard queries only metrics (and labels) the operator exposes.

A renamed metric would otherwise leave an empty panel that nobody notices until an
incident. Exposed names follow prometheus_client: counters as <name>_total, histograms
as <name>_bucket/_count/_sum, gauges as <name>.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atoma_operator import metrics

DASHBOARD = (
    Path(__file__).resolve().parents[2] / "charts" / "atoma-operator" / "dashboards"
    / "atoma-operator.json"
)  # fmt: skip
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
# Labels Prometheus adds to every series of a scrape target (ServiceMonitor / kube SD).
TARGET_LABELS = {"namespace", "pod", "instance", "job", "service", "container", "endpoint"}
METRIC = re.compile(r"\batoma_operator_[a-z_]+")
SELECTOR = re.compile(r"\b(atoma_operator_[a-z_]+)\{([^}]*)\}")
BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def _exposed() -> dict[str, tuple[str, set[str]]]:
    """Exposed sample name -> (metric type, label names it carries)."""
    out: dict[str, tuple[str, set[str]]] = {}
    for name, (type_, labels) in metrics.catalogue().items():
        for suffix in SUFFIXES[type_]:
            extra = {"le"} if suffix == "_bucket" else set()
            out[name + suffix] = (type_, set(labels) | extra)
    return out


def _strings(node: Any) -> Iterator[str]:
    """Every string in the dashboard: panel targets, nested rows, templating queries."""
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


@pytest.fixture(scope="module")
def queries() -> list[str]:
    found = [s for s in _strings(json.loads(DASHBOARD.read_text())) if METRIC.search(s)]
    assert found, "the dashboard queries no operator metric"
    return found


def test_every_queried_metric_is_exposed(queries: list[str]) -> None:
    exposed = _exposed()
    used = {name for q in queries for name in METRIC.findall(q)}
    assert used - exposed.keys() == set()


def test_every_exposed_metric_has_a_panel(queries: list[str]) -> None:
    used = {name for q in queries for name in METRIC.findall(q)}
    families = set(metrics.catalogue())  # the operator's own (process_* and python_* aside)
    unused = {f for f in families if not any(u.startswith(f) for u in used)}
    assert unused == set()


def test_labels_in_queries_exist_on_their_metrics(queries: list[str]) -> None:
    exposed = _exposed()
    wrong: list[str] = []
    for query in queries:
        names = set(METRIC.findall(query))
        known = set().union(*(exposed[n][1] for n in names if n in exposed)) | TARGET_LABELS
        for name, matchers in SELECTOR.findall(query):
            for label in re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", matchers):
                if label not in exposed.get(name, ("", set()))[1] | TARGET_LABELS:
                    wrong.append(f"{name}{{{label}}} in {query}")
        for group in BY.findall(query):
            wrong += [
                f"by ({g}) in {query}" for g in map(str.strip, group.split(",")) if g not in known
            ]
    assert wrong == []


def test_rate_and_increase_only_on_counters_and_buckets(queries: list[str]) -> None:
    """rate() of a gauge is a silent mistake: the panel draws, but means nothing."""
    exposed = _exposed()
    bad = [
        name
        for q in queries
        for name in re.findall(r"\b(?:rate|increase|irate)\(\s*(atoma_operator_[a-z_]+)", q)
        if exposed.get(name, ("",))[0] not in {"counter", "histogram"}
    ]
    assert bad == []
