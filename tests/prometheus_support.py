"""Prometheus' own promtool for tests: `check metrics` on real scrapes, `check rules` and
`test rules` on the chart's PrometheusRule.

promtool is built from the Go module proxy by ``hack/build-control-plane.sh promtool``
(cached per version, like helm); ``ATOMA_PROMTOOL=/path/to/promtool`` overrides it. A
test skips only when neither is possible because `go` is not installed (CI has go, so
there the tests run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

from atoma_dev.binaries import BinaryBuildError, binary_paths, ensure_binaries

PROMTOOL_ENV = "ATOMA_PROMTOOL"


@cache
def _promtool() -> Path | str:
    """The binary, or why there is none (a string)."""
    override = os.environ.get(PROMTOOL_ENV)
    if override:
        return Path(override)
    cached = binary_paths().promtool
    if not cached.is_file() and shutil.which("go") is None:
        return f"go is not installed, so promtool cannot be built (or set {PROMTOOL_ENV})"
    try:
        return ensure_binaries(("promtool",)).promtool
    except BinaryBuildError as exc:
        raise AssertionError(f"building promtool failed: {exc}") from exc


def promtool() -> Path:
    """promtool, built if missing; skips the test only when go is absent."""
    found = _promtool()
    if isinstance(found, str):
        pytest.skip(found)
    return found


def run_promtool(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool()), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=cwd,
    )


def check_metrics(text: str) -> None:
    """`promtool check metrics` (Prometheus' naming and exposition linter) on a scrape."""
    result = run_promtool("check", "metrics", stdin=text)
    assert result.returncode == 0, f"promtool check metrics:\n{result.stdout}{result.stderr}"
