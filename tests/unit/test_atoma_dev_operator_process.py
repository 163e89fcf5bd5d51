"""The helpers fault tests and benchmarks read an operator process with."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from atoma_dev.operator_process import OperatorProcess, metric_sum, parse_samples, process_usage

TEXT = """# HELP x_total things
# TYPE x_total counter
x_total{kind="A",reason="r"} 2.0
x_total{kind="AB"} 3.0
# TYPE y gauge
y 7.0
"""


def test_metric_sum_matches_label_values_exactly() -> None:
    samples = parse_samples(TEXT)
    assert metric_sum(samples, "x_total") == 5.0
    assert metric_sum(samples, "x_total", kind="A") == 2.0
    assert metric_sum(samples, "x_total", kind="B") == 0.0
    assert metric_sum(samples, "y") == 7.0


def test_process_usage_reads_this_process() -> None:
    usage = process_usage(os.getpid())
    assert 10 * 2**20 < usage.rss_bytes <= usage.peak_rss_bytes
    assert usage.cpu_seconds > 0


def test_a_process_that_exits_at_start_is_reported(tmp_path: Path) -> None:
    proc = OperatorProcess({}, log_file=tmp_path / "op.log", metrics_port=1)
    # No settings at all: the operator cannot start and must say so, not hang.
    proc.env.pop("KUBECONFIG", None)
    proc.env["ATOMA_PACKAGE_ID"] = "not-an-id"
    with pytest.raises(RuntimeError, match="operator exited"):
        proc.start(timeout=60)
    assert proc.log_text()
    proc.stop()
    assert not proc.running()
