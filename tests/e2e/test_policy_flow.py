"""SettlementPolicy in the operator, end to end (real apiserver, the stand-in, no admission
policy installed: these are the resources that got past admission).

A namespace no policy selects gets nothing signed; a spend limit lets the first resource
through and stops the next; a policy narrowed while a resource waits for its proof input
refuses it on its next pass. Refusals are Stalled with reason NotPermitted.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_support import Localnet, apply, condition, get, is_true, settlement, wait_until

from atoma_dev.controlplane import ControlPlane

pytestmark = pytest.mark.e2e

BUDGET = 50_000_000  # the default budget; the stand-in charges a few million per call


@pytest.fixture
def enforced(operator_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATOMA_POLICY_ENFORCED", "true")


@pytest.fixture
def policy(crds: ControlPlane) -> Iterator[Any]:
    names: list[str] = []

    def put(namespace: str, **spec: Any) -> str:
        name = names[0] if names else f"e2e-{secrets.token_hex(3)}"
        names[:] = [name]
        body = {
            "apiVersion": "atoma.network/v1alpha1",
            "kind": "SettlementPolicy",
            "metadata": {"name": name},
            "spec": {
                "namespaces": [namespace],
                "nodeSmallIds": [],
                "maxGasBudget": BUDGET,
                "maxGasPrice": 100_000,
                **spec,
            },
        }
        crds.kubectl("apply", "-f", "-", input=json.dumps(body))
        return name

    yield put
    for name in names:
        crds.kubectl("delete", "settlementpolicy", name, "--ignore-not-found")


def _stalled(crds: ControlPlane, namespace: str, name: str) -> Any:
    def check() -> dict[str, Any] | None:
        obj = get(crds, "stl", namespace, name)
        return obj if is_true(obj, "Stalled") else None

    return check


def _executions(localnet: Localnet) -> dict[str, int]:
    executions: dict[str, int] = localnet.counters()["executions"]
    return executions


def test_no_policy_selecting_the_namespace_signs_nothing(
    crds: ControlPlane, localnet: Localnet, namespace: str, run_operator: Any, enforced: None
) -> None:
    before = _executions(localnet)
    with run_operator():
        apply(crds, settlement("unpoliced", namespace, localnet.dev["stacks"][:1]))
        obj = wait_until(_stalled(crds, namespace, "unpoliced"), timeout=60, what="Stalled")
    stalled = condition(obj, "Stalled")
    assert stalled is not None and stalled["reason"] == "NotPermitted"
    assert f"no SettlementPolicy selects namespace {namespace}" in stalled["message"]
    assert _executions(localnet) == before


def test_spend_limit_lets_the_first_resource_through_and_stops_the_next(
    crds: ControlPlane,
    localnet: Localnet,
    namespace: str,
    run_operator: Any,
    enforced: None,
    policy: Any,
) -> None:
    badge = localnet.dev["badges"][0]["node_small_id"]
    stacks = localnet.dev["stacks"][:3]
    # Room for 2 transactions of BUDGET: the first resource (2 stacks) fits, the second
    # (1 more stack) does not.
    name = policy(
        namespace,
        nodeSmallIds=[badge],
        spendLimit={"mist": 2 * BUDGET, "periodSeconds": 3600},
    )
    with run_operator():
        apply(crds, settlement("first", namespace, stacks[:2], gasBudget=BUDGET))
        wait_until(
            lambda: (o := get(crds, "stl", namespace, "first")) and is_true(o, "Ready") and o,
            timeout=90,
            what="first Ready",
        )
        before = _executions(localnet)
        apply(crds, settlement("second", namespace, stacks[2:], gasBudget=BUDGET))
        obj = wait_until(_stalled(crds, namespace, "second"), timeout=60, what="second Stalled")
    stalled = condition(obj, "Stalled")
    assert stalled is not None and stalled["reason"] == "NotPermitted"
    assert "spend limit reached" in stalled["message"]
    assert _executions(localnet) == before
    ledger = json.loads(crds.kubectl("get", "settlementpolicy", name, "-o", "json").stdout)
    assert ledger["status"]["period"]["committedMist"] == 2 * BUDGET
    first = get(crds, "stl", namespace, "first")
    assert first["status"]["policyCharges"] == [
        {"policy": name, "periodStart": ledger["status"]["period"]["start"], "mist": 2 * BUDGET}
    ]


def test_a_policy_narrowed_while_a_resource_waits_refuses_it(
    crds: ControlPlane,
    localnet: Localnet,
    namespace: str,
    run_operator: Any,
    enforced: None,
    policy: Any,
) -> None:
    badge = localnet.dev["badges"][0]["node_small_id"]
    policy(namespace, nodeSmallIds=[badge])
    stack = localnet.dev["stacks"][0]
    before = _executions(localnet)
    ref = {"valueFrom": {"configMapKeyRef": {"name": "later", "key": "total"}}}
    with run_operator():
        apply(crds, settlement("waits", namespace, [stack], proofs={stack: ref}))

        def waiting() -> dict[str, Any] | None:
            obj = get(crds, "stl", namespace, "waits")
            reconciling = condition(obj, "Reconciling") or {}
            return obj if reconciling.get("reason") == "WaitingForProofInput" else None

        wait_until(waiting, timeout=60, what="WaitingForProofInput")
        policy(namespace, nodeSmallIds=[badge + 1000])  # the admin narrows it meanwhile
        obj = wait_until(_stalled(crds, namespace, "waits"), timeout=60, what="Stalled")
    stalled = condition(obj, "Stalled")
    assert stalled is not None and stalled["reason"] == "NotPermitted"
    assert f"node badge {badge}" in stalled["message"]
    assert _executions(localnet) == before
