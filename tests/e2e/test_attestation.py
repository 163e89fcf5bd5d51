"""Attestation end to end: sampled attestation nodes held by this operator, slots,
counts in the StackSettlement's status, settlement complete after the dispute epoch,
and a disagreeing proof ending in Disputed."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from e2e_support import (
    PROOF_HEX,
    Localnet,
    apply,
    attestation,
    condition,
    get,
    is_true,
    settlement,
    wait_until,
)

from atoma_dev.controlplane import ControlPlane

pytestmark = pytest.mark.e2e


@pytest.fixture
def sampled_stack(
    localnet: Localnet, monkeypatch: pytest.MonkeyPatch, operator_env: Any
) -> dict[str, Any]:
    """Two badges of this operator, sampling forced on, one SamplingConsensus stack."""
    dev = localnet.dev
    first = dev["badges"][0]
    second = localnet.admin("/badge", {"owner": dev["address"]})
    badges = [first, {"object_id": second["object_id"], "node_small_id": second["node_small_id"]}]
    monkeypatch.setenv("ATOMA_BADGES", json.dumps(badges))
    localnet.admin("/sampling", {"probability": 1.0, "extra_nodes_count": 1})
    stack = localnet.admin(
        "/stack",
        {"selected_node_id": first["node_small_id"], "owner": dev["address"], "security_level": 2},
    )["stack_small_id"]
    assert os.environ["ATOMA_BADGES"] == json.dumps(badges)
    return {"stack": stack, "selected": first["node_small_id"], "badges": badges}


def _wait(
    cp: ControlPlane, kind: str, ns: str, name: str, cond: str, timeout: float = 90
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = get(cp, kind, ns, name)
        return obj if is_true(obj, cond) else None

    return wait_until(check, timeout=timeout, what=f"{kind}/{name} {cond}")


def test_sampled_attestation_completes_settlement_after_dispute_epoch(
    crds: ControlPlane,
    localnet: Localnet,
    namespace: str,
    run_operator: Any,
    sampled_stack: dict[str, Any],
) -> None:
    stack, selected = sampled_stack["stack"], sampled_stack["selected"]
    with run_operator():
        apply(
            crds, settlement("s", namespace, [stack], nodeSmallId=selected, proofScheme="Contract")
        )
        stl = _wait(crds, "stl", namespace, "s", "Ready")
        entry = stl["status"]["stacks"][0]
        requested = entry["requestedAttestationNodes"]
        assert len(requested) == 1 and requested[0] in {
            b["node_small_id"] for b in sampled_stack["badges"]
        }
        assert entry["requiredAttestations"] == 1 and entry["receivedAttestations"] == 0
        assert entry["attestationStatus"] == "Pending" and entry["settlementComplete"] is False

        apply(crds, attestation("a", namespace, [stack], proofScheme="Contract"))
        atst = _wait(crds, "atst", namespace, "a", "Ready")
        entries = atst["status"]["attestations"]
        assert [(e["stackSmallId"], e["nodeSmallId"], e["slot"]) for e in entries] == [
            (stack, requested[0], 1)
        ]
        assert localnet.executions(entries[0]["txDigest"]) == 1
        assert atst["status"]["txDigests"] == [entries[0]["txDigest"]]

        def counted() -> dict[str, Any] | None:
            obj = get(crds, "stl", namespace, "s")
            e = obj["status"]["stacks"][0]
            return (
                obj
                if e.get("receivedAttestations") == 1 and e.get("attestationStatus") == "Complete"
                else None
            )

        stl = wait_until(counted, timeout=60, what="attestation counted on the StackSettlement")
        assert stl["status"]["stacks"][0]["settlementComplete"] is False
        assert not is_true(stl, "Settled")

        localnet.admin("/epoch/advance", {})
        stl = _wait(crds, "stl", namespace, "s", "Settled")
    done = stl["status"]["stacks"][0]
    assert done["phase"] == "Settled" and done["settlementComplete"] is True
    assert is_true(stl, "Ready")


def test_disagreeing_attestation_is_disputed_and_stalls_both(
    crds: ControlPlane,
    localnet: Localnet,
    namespace: str,
    run_operator: Any,
    sampled_stack: dict[str, Any],
) -> None:
    stack, selected = sampled_stack["stack"], sampled_stack["selected"]
    other_hex = "cd" * 32 * 3
    assert other_hex != PROOF_HEX
    with run_operator():
        apply(
            crds, settlement("s", namespace, [stack], nodeSmallId=selected, proofScheme="Contract")
        )
        _wait(crds, "stl", namespace, "s", "Ready")
        apply(
            crds,
            attestation("bad", namespace, [stack], proof_hex=other_hex, proofScheme="Contract"),
        )
        atst = _wait(crds, "atst", namespace, "bad", "Stalled")
        stl = _wait(crds, "stl", namespace, "s", "Stalled")
    assert condition(atst, "Stalled")["reason"] == "Disputed"  # type: ignore[index]
    assert atst["status"]["attestations"][0]["phase"] == "Disputed"
    assert not is_true(atst, "Ready")
    assert condition(stl, "Stalled")["reason"] == "Disputed"  # type: ignore[index]
    assert stl["status"]["stacks"][0]["phase"] == "Disputed"
    assert stl["status"]["stacks"][0]["attestationStatus"] == "Failed"
    assert not is_true(stl, "Ready")
