"""Ordinary interference while a transaction of the same badge is in flight.

One badge, a stand-in that takes its time to execute: while the first resource's
transaction is in flight, a user labels one resource, annotates another, deletes a
third and wipes the status of the one whose transaction is in flight. Nothing may stall
the badge: the in-flight digest ends up recorded again, every transaction is sent once,
and new resources on the badge all reach Ready.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Localnet, apply, get, is_true, settlement, wait_until

from atoma_dev.controlplane import ControlPlane

pytestmark = pytest.mark.e2e
LATENCY = 1.5


@pytest.fixture
def localnet(tmp_path: Path) -> Iterator[Localnet]:
    node = Localnet(
        tmp_path / "localnet", seed=secrets.randbelow(2**31), extra_args=["--stacks", "7"]
    )
    node.proc.workdir.mkdir(parents=True, exist_ok=True)
    node.start()
    try:
        yield node
    finally:
        node.stop()


def _pending(cp: ControlPlane, ns: str, name: str) -> str | None:
    stacks = (get(cp, "stl", ns, name).get("status") or {}).get("stacks") or []
    pending = stacks[0].get("pending") if stacks else None
    return pending["digest"] if pending else None


def _ready(cp: ControlPlane, ns: str, name: str) -> dict[str, Any] | None:
    obj = get(cp, "stl", ns, name)
    return obj if is_true(obj, "Ready") else None


def test_label_annotate_delete_and_status_wipe_while_a_badge_is_busy(
    crds: ControlPlane, localnet: Localnet, namespace: str, run_operator: Any
) -> None:
    stacks = localnet.dev["stacks"]
    assert len(stacks) >= 7
    ns = namespace
    with run_operator():
        localnet.admin("/faults", {"execute_latency": LATENCY})
        apply(crds, settlement("inflight", ns, [stacks[0]]))
        for i, name in enumerate(("labelled", "annotated", "deleted"), start=1):
            apply(crds, settlement(name, ns, [stacks[i]]))
        digest = wait_until(lambda: _pending(crds, ns, "inflight"), timeout=60, what="intent")

        crds.kubectl("label", "stl", "-n", ns, "labelled", "team=payments")
        crds.kubectl("annotate", "stl", "-n", ns, "annotated", "example.com/note=checked")
        crds.kubectl("delete", "stl", "-n", ns, "deleted", "--wait=false")
        crds.kubectl(
            "patch", "stl", "-n", ns, "inflight", "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": None}),
        )  # fmt: skip

        inflight = wait_until(lambda: _ready(crds, ns, "inflight"), timeout=90, what="Ready")
        assert inflight["status"]["stacks"][0]["txDigest"] == digest, "the wiped digest was lost"
        for name in ("labelled", "annotated"):
            wait_until(lambda n=name: _ready(crds, ns, n), timeout=90, what=f"{name} Ready")

        localnet.admin("/faults", {"execute_latency": 0.2})
        for i, stack in enumerate(stacks[4:7]):
            apply(crds, settlement(f"after-{i}", ns, [stack]))
        for i in range(3):
            wait_until(lambda n=f"after-{i}": _ready(crds, ns, n), timeout=90, what="new Ready")

    executions = localnet.counters()["executions"]
    assert executions.get(digest) == 1
    assert all(count == 1 for count in executions.values()), executions
