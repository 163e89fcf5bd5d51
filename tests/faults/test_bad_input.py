"""Bad input ends in a clear condition, with nothing executed and no gas spent.

Chain-level failures are caught by simulation (it costs nothing), so each must end
Stalled with the contract's abort name, one simulation at most, and no execution;
invalid resources never get past the apiserver's admission, so nothing reaches the chain.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from e2e_support import attestation, condition, is_true, settlement
from fault_support import Fleet, poll
from kubernetes.client.exceptions import ApiException

from admission_cases import load_cases

pytestmark = pytest.mark.e2e


def _stalled(fleet: Fleet, names: list[str], timeout: float = 90) -> dict[str, dict[str, Any]]:
    return fleet.wait_for(names, lambda o: is_true(o, "Stalled"), timeout=timeout, what="Stalled")


def test_chain_level_failures_stall_with_the_abort_and_spend_nothing(fleet: Fleet) -> None:
    stranger = "0x" + secrets.token_hex(32)
    other_node = fleet.chain.admin("/badge", {"owner": stranger})["node_small_id"]
    (not_ours,) = fleet.add_stacks(1, node=other_node)
    (small,) = fleet.add_stacks(1, num_compute_units=100)
    cases = {
        # The stacks table lookup itself aborts (in dynamic_field) before the contract's check.
        "unknown-stack": (settlement("unknown-stack", fleet.ns, [9_999_999]), "EFieldDoesNotExist"),
        "not-selected": (
            settlement("not-selected", fleet.ns, [not_ours]),
            "ENodeNotSelectedForStack",
        ),
        "too-many-units": (
            settlement("too-many-units", fleet.ns, [small], units=101),
            "ETooManyComputedUnits",
        ),
    }
    fleet.operator()
    balance = fleet.gas_balance()
    fleet.chain.admin("/counters/reset", {})
    fleet.create(manifest for manifest, _ in cases.values())
    objs = _stalled(fleet, list(cases))
    for name, (_, reason) in cases.items():
        stalled = condition(objs[name], "Stalled")
        assert stalled is not None and stalled["reason"] == reason, (name, stalled)
        assert not is_true(objs[name], "Ready")
        entry = objs[name]["status"]["stacks"][0]
        assert entry["phase"] == "Failed" and "txDigest" not in entry and "pending" not in entry
        assert reason in entry["lastError"]
    calls = fleet.calls()
    assert calls.get("ExecuteTransaction", 0) == 0, calls
    assert calls.get("SimulateTransaction", 0) <= len(cases), "a terminal failure was retried"
    assert fleet.executions() == {}
    assert fleet.gas_balance() == balance


def test_attesting_after_the_dispute_period_stalls_and_spends_nothing(fleet: Fleet) -> None:
    badges = fleet.add_badges(2)
    selected, attester = badges[0]["node_small_id"], badges[1]["node_small_id"]
    # More attestation nodes than exist: the contract then requests every node, ours too.
    fleet.chain.admin("/sampling", {"probability": 1.0, "extra_nodes_count": 10})
    (stack,) = fleet.add_stacks(1, node=selected, security_level=2)
    fleet.operator()
    fleet.create([settlement("s", fleet.ns, [stack], nodeSmallId=selected, proofScheme="Contract")])
    stl = fleet.wait_ready(["s"], timeout=90)["s"]
    assert attester in stl["status"]["stacks"][0]["requestedAttestationNodes"]
    for _ in range(2):  # dispute_settled_at_epoch = settle epoch + 1; be past it
        fleet.chain.admin("/epoch/advance", {})
    balance = fleet.gas_balance()
    fleet.chain.admin("/counters/reset", {})
    executed_before = dict(fleet.executions())
    manifest = attestation("late", fleet.ns, [stack], nodeSmallId=attester, proofScheme="Contract")
    fleet.custom.create_namespaced_custom_object(
        "atoma.network", "v1alpha1", fleet.ns, "attestations", manifest
    )

    def stalled() -> dict[str, Any] | None:
        obj: Any = fleet.custom.get_namespaced_custom_object(
            "atoma.network", "v1alpha1", fleet.ns, "attestations", "late"
        )
        return obj if is_true(obj, "Stalled") else None

    obj = poll(stalled, timeout=90, what="Attestation Stalled")
    cond = condition(obj, "Stalled")
    assert cond is not None and "DisputePeriodOver" in (cond["reason"] + cond["message"]), cond
    assert fleet.calls().get("ExecuteTransaction", 0) == 0
    assert fleet.executions() == executed_before
    assert fleet.gas_balance() == balance


def test_invalid_resources_are_refused_before_anything_is_sent(fleet: Fleet) -> None:
    fleet.operator()
    fleet.chain.admin("/counters/reset", {})
    plurals = {"StackSettlement": "stacksettlements", "Attestation": "attestations"}
    cases = load_cases()
    assert cases
    for case in cases:
        body = dict(case.resource)
        body["metadata"] = {**body.get("metadata", {}), "namespace": fleet.ns}
        with pytest.raises(ApiException) as refused:
            fleet.custom.create_namespaced_custom_object(
                "atoma.network",
                "v1alpha1",
                fleet.ns,
                plurals[case.kind],
                body,
                field_validation="Strict",  # as kubectl does: unknown fields are errors
            )
        assert refused.value.status in (400, 422), (case.id, refused.value.status)
    assert fleet.objects() == {}
    calls = fleet.calls()
    for method in ("SimulateTransaction", "ExecuteTransaction"):
        assert calls.get(method, 0) == 0, calls
