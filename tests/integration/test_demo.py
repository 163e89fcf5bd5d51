"""The README's quick start: `atoma-dev demo up` brings everything up and the samples
reach Ready and Settled; `demo down` stops every process it started."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from atoma_dev.binaries import Binaries

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "atoma_dev"]


def test_quick_start_demo_up_and_down(control_plane_binaries: Binaries, tmp_path: Path) -> None:
    state = tmp_path / "demo"
    try:
        up = subprocess.run(
            [*CLI, "demo", "up", "--state-dir", str(state), "--timeout", "120"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert up.returncode == 0, up.stderr[-3000:]
        assert "state database at" in up.stderr  # proofs come from PostgreSQL
        assert "demo-settlement is Settled" in up.stderr
        assert "demo-attestation is Ready" in up.stderr
        table = up.stdout
        assert "demo-settlement" in table and "Settled" in table
        assert "demo-attestation" in table and "Attested" in table
        rows = table.split("\nmetrics:")[0].splitlines()  # kubectl get atoma -A
        assert max(len(line) for line in rows) <= 120, table
        [metrics_url] = re.findall(r"^metrics: (http://127\.0\.0\.1:\d+/metrics)$", table, re.M)
        with urllib.request.urlopen(metrics_url, timeout=10) as response:
            scrape = response.read().decode()
        assert "atoma_operator_transactions_submitted_total{" in scrape, scrape[:2000]
        pids = [int((state / f"{n}.pid").read_text()) for n in ("operator", "localnet")]
        pids.append(json.loads((state / "postgres" / "postgres.json").read_text())["pid"])
    finally:
        down = subprocess.run(
            [*CLI, "demo", "down", "--state-dir", str(state)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert down.returncode == 0, down.stderr
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )
