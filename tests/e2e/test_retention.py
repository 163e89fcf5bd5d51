"""Retention (ttlSecondsAfterFinished) and what re-creating a deleted resource does."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from e2e_support import Localnet, apply, get, is_true, settlement, wait_until

from atoma_dev.controlplane import ControlPlane

pytestmark = pytest.mark.e2e


def _exists(cp: ControlPlane, ns: str, name: str) -> bool:
    try:
        get(cp, "stl", ns, name)
    except subprocess.CalledProcessError:
        return False
    return True


def test_a_final_resource_is_deleted_after_its_ttl(
    crds: ControlPlane, localnet: Localnet, namespace: str, run_operator: Any
) -> None:
    stack = localnet.dev["stacks"][0]
    with run_operator():
        # A node this operator holds no badge for: Failed at once (final), nothing sent.
        apply(
            crds,
            settlement("gone", namespace, [stack], nodeSmallId=999_999, ttlSecondsAfterFinished=1),
        )
        apply(crds, settlement("kept", namespace, [stack], nodeSmallId=999_999))
        wait_until(
            lambda: is_true(get(crds, "stl", namespace, "kept"), "Stalled"),
            timeout=60,
            what="Stalled",
        )
        wait_until(lambda: not _exists(crds, namespace, "gone"), timeout=60, what="deletion")
        assert _exists(crds, namespace, "kept"), "no TTL (and none set): the resource stays"
    assert localnet.counters().get("executions", {}) == {}


def test_re_creating_a_deleted_resource_sends_nothing(
    crds: ControlPlane, localnet: Localnet, namespace: str, run_operator: Any
) -> None:
    """What Argo CD or Flux do after retention (or a prune) deleted a resource they still
    hold in git: the same manifest comes back. The simulation before any intent aborts
    with EStackInSettlementDispute (a ticket exists); it is read, nothing executed."""
    stack = localnet.dev["stacks"][1]
    manifest = settlement("again", namespace, [stack])
    with run_operator():
        apply(crds, manifest)
        first = wait_until(
            lambda: (o := get(crds, "stl", namespace, "again")) and is_true(o, "Ready") and o,
            timeout=60,
            what="Ready",
        )
        digest = first["status"]["stacks"][0]["txDigest"]
        crds.kubectl("delete", "stl", "-n", namespace, "again")
        crds.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        second = wait_until(
            lambda: (
                (o := get(crds, "stl", namespace, "again"))
                and o["metadata"]["uid"] != first["metadata"]["uid"]
                and is_true(o, "Ready")
                and o
            ),
            timeout=60,
            what="the re-created resource Ready",
        )
    entry = second["status"]["stacks"][0]
    assert "txDigest" not in entry and entry["phase"] in ("Settling", "Settled")
    assert localnet.counters()["executions"] == {digest: 1}
