"""Percentiles, the stdout table and the JSON file: the figures' only output paths."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (no interpolation: every figure is a measured value)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def spread(values: Sequence[float]) -> dict[str, float | int | None]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
    }


def machine() -> dict[str, Any]:
    """What the figures ran on: they are only comparable on the same machine."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_mib": mem_kib // 1024,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def table(rows: list[tuple[str, str, Any, str]]) -> str:
    """Rows of (section, figure, value, note) as an aligned text table."""
    cells = [(s, f, fmt(v), n) for s, f, v, n in rows]
    head = ("section", "figure", "value", "note")
    widths = [max(len(r[i]) for r in [head, *cells]) for i in range(3)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head[:3], widths, strict=True)) + "  " + head[3]]
    lines.append("-" * (sum(widths) + 6 + 4))
    for row in cells:
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3]
        )
    return "\n".join(lines)


def write_json(results: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return path


def profile_table(profile: dict[str, Any], k: int = 10) -> str:
    """The top-k cumulative and self shares of a py-spy profile (`bench.profile.top_costs`)."""
    lines = [f"samples: {profile['samples']}", "cumulative:"]
    lines += [f"  {share:6.1%}  {name}" for name, share in profile["cumulative"][:k]]
    lines.append("self:")
    lines += [f"  {share:6.1%}  {name}" for name, share in profile["self"][:k]]
    lines.append("samples passing through each library:")
    lines += [f"  {share:6.1%}  {name}" for name, share in profile.get("packages", [])]
    return "\n".join(lines)
