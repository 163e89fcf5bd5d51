"""The `limit` section's figures: throughput as a fraction of what the chain allows.

With the stand-in's consensus latency on, each badge carries one transaction at a time
(it is an owned object in every call), so the chain allows badges ÷ latency
transactions per second; each stack's throughput is reported against that. Also the
split of apiserver writes per stack by verb and resource, shared with the cost rows.
"""

from __future__ import annotations

from typing import Any

from bench.kube import WRITE_VERBS
from bench.throughput import Shape

Row = tuple[str, str, Any, str]

WRITE_LABELS = {
    "PATCH/stacksettlements/status": "status PATCHes",
    "PATCH/stacksettlements/": "object PATCHes (kopf annotations)",
    "POST/events/": "Event POSTs",
    "PATCH/events/": "Event PATCHes (aggregation)",
}
OWN_WRITES = {"POST/stacksettlements/"}  # the bench's own creates


def write_rows(section: str, requests: dict[str, int], n: int) -> list[Row]:
    """apiserver writes per stack, one row per verb/resource (the bench's creates left out)."""
    rows: list[Row] = []
    for key, count in sorted(requests.items()):
        if key.split("/", 1)[0] not in WRITE_VERBS or key in OWN_WRITES:
            continue
        rows.append((section, f"  writes/stack: {WRITE_LABELS.get(key, key)}", count / n, key))
    return rows


def limit_rows(
    key: str,
    shape: Shape,
    n: int,
    op: dict[str, Any],
    bare: dict[str, Any],
    daemon: dict[str, Any] | None,
) -> list[Row]:
    sec = f"limit {key}"
    limit = shape.badges / shape.latency
    rows: list[Row] = [
        (
            sec,
            "chain limit (tx/s)",
            limit,
            f"{shape.badges} badges / {shape.latency} s (±{shape.jitter}), n={n}",
        )
    ]
    for label, phase in (("operator", op), ("bare pysui", bare), ("daemon pattern", daemon)):
        if phase is None:
            continue
        tps = n / phase["seconds"] if phase["seconds"] else None
        target = "target >= 0.9 at 16 badges" if label == "operator" else ""
        rows.append((sec, f"{label} tx/s", tps, f"{phase['seconds']:.1f} s"))
        rows.append((sec, f"{label} / limit", None if tps is None else tps / limit, target))
    waited = op.get("shared_latency", {})
    rows += [
        (
            sec,
            "operator CPU per stack (ms)",
            1000 * op["operator_cpu_s"] / n,
            f"bare loop {1000 * bare['client_cpu_s'] / n:.1f} ms",
        ),
        (
            sec,
            "operator: latency waits / most at once",
            f"{waited.get('applied')} / {waited.get('max_in_flight')}",
            "stand-in counters",
        ),
        (
            sec,
            "operator: mean transactions in consensus",
            waited.get("total_seconds", 0.0) / op["seconds"] if op["seconds"] else None,
            f"of {shape.badges} badges (lanes busy on average)",
        ),
        (
            sec,
            "operator: badge cycle / intent->effects (s)",
            f"{op['seconds'] * shape.badges / n:.2f} / {op.get('intent_to_effects_mean_s') or 0:.2f}",
            "wall per transaction of one badge / mean of the operator's histogram",
        ),
    ]
    return rows
