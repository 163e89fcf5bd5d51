"""The chart renders CRDs from its own copy; the copy must equal the generator's output."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE = REPO_ROOT / "crds"
CHART_COPY = REPO_ROOT / "charts" / "atoma-operator" / "files" / "crds"
SYNC = REPO_ROOT / "hack" / "sync-chart-crds.sh"


def _yaml_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*.yaml"))}


def test_chart_crds_equal_generated_crds() -> None:
    source = _yaml_files(SOURCE)
    if not source:
        pytest.skip("crds/ is empty: run `make crds`")
    assert _yaml_files(CHART_COPY) == source, "run hack/sync-chart-crds.sh"


def test_sync_script_check_mode_agrees() -> None:
    if not _yaml_files(SOURCE):
        pytest.skip("crds/ is empty: run `make crds`")
    result = subprocess.run(
        ["bash", str(SYNC), "--check"], capture_output=True, text=True, check=False, timeout=30
    )
    in_sync = _yaml_files(CHART_COPY) == _yaml_files(SOURCE)
    assert (result.returncode == 0) is in_sync, result.stderr
