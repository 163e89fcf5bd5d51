"""Claimed stacks of the operator's badges, written by the chain follower: readable with
`kubectl get cm -l atoma.network/node=<id>` while the operator runs.

Needs the follower hook (ClaimedStacksFeed: load, observe, flush) described in issue 12's
report; until the lead wires it into follower.py this test is an expected failure.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from e2e_support import Localnet, apply, settlement, wait_until

from atoma_dev.controlplane import ControlPlane
from atoma_operator.claimed import DATA_KEY, NODE_LABEL

pytestmark = pytest.mark.e2e


def test_settled_stacks_appear_in_the_badge_summary(
    crds: ControlPlane, localnet: Localnet, namespace: str, run_operator: Any
) -> None:
    stacks = localnet.dev["stacks"][:2]
    node = localnet.dev["badges"][0]["node_small_id"]

    def summary() -> list[dict[str, Any]] | None:
        out = crds.kubectl(
            "get", "cm", "-n", namespace, "-l", f"{NODE_LABEL}={node}", "-o", "json"
        ).stdout
        items = json.loads(out)["items"]
        if not items:
            return None
        entries: list[dict[str, Any]] = json.loads(items[0]["data"][DATA_KEY])
        return entries if {e["stack_small_id"] for e in entries} >= set(stacks) else None

    with run_operator():
        apply(crds, settlement("claimed", namespace, stacks))
        entries = wait_until(summary, timeout=90, what="the badge's claimed-stack summary")
    for entry in entries:
        assert entry["selected_node_id"] == node
        assert json.loads(entry["requested_attestation_nodes"]) is not None
        assert entry["attestation_status"] in {"Pending", "Complete"}
