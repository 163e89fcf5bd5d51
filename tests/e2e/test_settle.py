"""StackSettlement end to end: kubectl apply -> transactions on the stand-in -> status."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from e2e_support import Localnet, apply, get, is_true, settlement, wait_until

from atoma_dev.controlplane import ControlPlane

pytestmark = pytest.mark.e2e


def _ready(cp: ControlPlane, ns: str, name: str) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        obj = get(cp, "stl", ns, name)
        return obj if is_true(obj, "Ready") else None

    return check


def test_three_stacks_settle_in_order_each_executed_once(
    crds: ControlPlane, localnet: Localnet, namespace: str, run_operator: Any
) -> None:
    stacks = localnet.dev["stacks"][:3]
    assert len(stacks) == 3
    with run_operator():
        apply(crds, settlement("three", namespace, stacks))
        obj = wait_until(_ready(crds, namespace, "three"), timeout=90, what="Ready")
        crds.kubectl("wait", "--for=condition=Ready", "stl/three", "-n", namespace, "--timeout=30s")
    status = obj["status"]
    digests = status["txDigests"]
    assert len(digests) == 3
    assert [s["stackSmallId"] for s in status["stacks"]] == stacks
    assert [s["txDigest"] for s in status["stacks"]] == digests
    for entry in status["stacks"]:
        assert entry["phase"] in {"Settling", "Settled"}
        assert entry["selectedNodeId"] == localnet.dev["badges"][0]["node_small_id"]
        assert entry["numClaimedComputeUnits"] == 10
        assert "pending" not in entry
    for digest in digests:
        assert localnet.executions(digest) == 1
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    columns = crds.kubectl("get", "stl", "three", "-n", namespace).stdout
    assert digests[0][:10] in columns
