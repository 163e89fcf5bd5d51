"""Claimed-stack summaries on the real apiserver: `kubectl get cm -l atoma.network/node=<id>`
returns the badge's summary with the seed's JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from kubernetes import client

from atoma_dev.controlplane import ControlPlane
from atoma_operator.atoma.events import StackTrySettleEvent
from atoma_operator.claimed import (
    DATA_KEY,
    NODE_LABEL,
    ClaimedStacks,
    ClaimedStacksFeed,
    kube_writer,
    load_records,
)
from atoma_operator.kube import Kube

pytestmark = pytest.mark.integration
LEAF = b"\x00" * 32


async def test_summary_per_badge_is_selectable_by_node_label(
    control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str
) -> None:
    view = ClaimedStacks([7, 8])
    at = datetime(2024, 3, 21, 12, 0, tzinfo=UTC)
    view.observe(StackTrySettleEvent("d", 0, 1, 7, (8, 9), LEAF, LEAF, 1000), at=at)
    view.observe(StackTrySettleEvent("d", 1, 2, 7, (9,), LEAF, LEAF, 50), at=at)
    kube = Kube(kube_api)
    assert await view.flush(kube_writer(kube, namespace)) == 2
    out = control_plane.kubectl(
        "get", "cm", "-n", namespace, "-l", f"{NODE_LABEL}=8", "-o", "json"
    ).stdout
    (summary,) = json.loads(out)["items"]
    stacks = json.loads(summary["data"][DATA_KEY])
    assert [s["stack_small_id"] for s in stacks] == [1]
    assert stacks[0]["requested_attestation_nodes"] == "[8, 9]"
    out = control_plane.kubectl(
        "get", "cm", "-n", namespace, "-l", f"{NODE_LABEL}=7", "-o", "json"
    ).stdout
    (summary,) = json.loads(out)["items"]
    assert [s["stack_small_id"] for s in json.loads(summary["data"][DATA_KEY])] == [1, 2]
    # After a restart the summaries are read back, so the next write keeps them.
    restarted = ClaimedStacks([7, 8])
    assert restarted.restore(await load_records(kube, namespace, [7, 8])) == 2
    assert restarted.seed_json(7) == view.seed_json(7)
    assert restarted.seed_json(8) == view.seed_json(8)
    # The follower's feed: load, observe, flush, as the hook calls it.
    feed = ClaimedStacksFeed(kube, namespace, [7, 8])
    assert await feed.load() == 2
    feed.observe(StackTrySettleEvent("d", 2, 3, 9, (7,), LEAF, LEAF, 5))
    assert await feed.flush() == 1
    assert [s["stack_small_id"] for s in feed.view.seed_json(7)] == [1, 2, 3]
