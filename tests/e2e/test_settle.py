"""StackSettlement end to end: kubectl apply -> transactions on the stand-in -> status."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from e2e_support import Localnet, apply, condition, get, is_true, settlement, wait_until
from kubernetes import client, watch

from atoma_dev.controlplane import ControlPlane

pytestmark = pytest.mark.e2e


def _ready(cp: ControlPlane, ns: str, name: str) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        obj = get(cp, "stl", ns, name)
        return obj if is_true(obj, "Ready") else None

    return check


def _watch_statuses(
    kube_api: client.ApiClient, namespace: str, seen: list[dict[str, Any]]
) -> threading.Thread:
    """Every status the apiserver sends for the namespace's StackSettlements, in order.

    Lists first and watches from the listed resourceVersion, so no write made after this
    returns can be missed however late the thread starts.
    """
    api = client.CustomObjectsApi(kube_api)
    args = ("atoma.network", "v1alpha1", namespace, "stacksettlements")
    listed = api.list_namespaced_custom_object(*args)
    since = listed["metadata"]["resourceVersion"]

    def run() -> None:
        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
            api.list_namespaced_custom_object, *args,
            resource_version=since, timeout_seconds=60,
        )  # fmt: skip
        for event in stream:
            status = event["object"].get("status") or {}
            seen.append(status)
            ready = [c for c in status.get("conditions") or () if c.get("type") == "Ready"]
            if ready and ready[0].get("status") == "True":
                return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_three_stacks_settle_in_order_each_executed_once(
    crds: ControlPlane,
    localnet: Localnet,
    namespace: str,
    run_operator: Any,
    kube_api: client.ApiClient,
) -> None:
    stacks = localnet.dev["stacks"][:3]
    assert len(stacks) == 3
    seen: list[dict[str, Any]] = []
    watcher = _watch_statuses(kube_api, namespace, seen)
    with run_operator():
        apply(crds, settlement("three", namespace, stacks))
        obj = wait_until(_ready(crds, namespace, "three"), timeout=90, what="Ready")
        crds.kubectl("wait", "--for=condition=Ready", "stl/three", "-n", namespace, "--timeout=30s")
    watcher.join(timeout=30)
    intents = [st for st in seen if any("pending" in e for e in st.get("stacks") or ())]
    assert intents, "the watch saw no write-ahead intent"
    for status in (st for st in seen if st):
        assert status.get("observedGeneration") == 1, "every write says generation 1 observed"
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
    assert not obj["metadata"].get("finalizers"), "no finalizer: deletion needs no clean-up"
    columns = crds.kubectl("get", "stl", "three", "-n", namespace, "--no-headers").stdout
    node = str(localnet.dev["badges"][0]["node_small_id"])
    assert columns.split()[2:4] == [node, f"{status['settled']}"]  # NODE, SETTLED
    assert status["nodeSmallId"] == int(node)
    wide = crds.kubectl("get", "stl", "three", "-n", namespace, "-o", "wide").stdout
    assert all(d in wide for d in digests)


def _executed_digests(localnet: Localnet) -> dict[str, int]:
    executions: dict[str, int] = localnet.counters()["executions"]
    return executions


def test_one_bad_stack_does_not_block_the_others(
    crds: ControlPlane, localnet: Localnet, namespace: str, run_operator: Any
) -> None:
    other = localnet.admin("/badge", {"owner": "0x" + "5" * 64})
    foreign = localnet.admin(
        "/stack", {"selected_node_id": other["node_small_id"], "owner": "0x" + "6" * 64}
    )["stack_small_id"]
    good = localnet.dev["stacks"][:2]
    stacks = [good[0], foreign, good[1]]
    before = _executed_digests(localnet)
    with run_operator():
        apply(crds, settlement("mixed", namespace, stacks))

        def stalled() -> dict[str, Any] | None:
            obj = get(crds, "stl", namespace, "mixed")
            return obj if is_true(obj, "Stalled") else None

        obj = wait_until(stalled, timeout=90, what="Stalled")
    entries = {s["stackSmallId"]: s for s in obj["status"]["stacks"]}
    assert entries[foreign]["phase"] == "Failed"
    assert (
        "ENotStackSelectedNode" in entries[foreign]["lastError"]
        or "selected" in entries[foreign]["lastError"]
    )
    assert "txDigest" not in entries[foreign]
    for sid in good:
        assert entries[sid]["phase"] in {"Settling", "Settled"}
        assert localnet.executions(entries[sid]["txDigest"]) == 1
    assert obj["status"]["txDigests"] == [
        entries[good[0]]["txDigest"],
        entries[good[1]]["txDigest"],
    ]
    stalled_cond = condition(obj, "Stalled")
    assert stalled_cond is not None and stalled_cond["reason"] != "Failed"
    ready = condition(obj, "Ready")
    assert ready is not None and ready["status"] == "False"
    # the bad stack was caught by simulation: only the two good transactions executed
    after = _executed_digests(localnet)
    assert len(after) - len(before) == 2


def test_two_resources_for_one_stack_send_one_transaction(
    crds: ControlPlane, localnet: Localnet, namespace: str, run_operator: Any
) -> None:
    stack = localnet.dev["stacks"][0]
    before = _executed_digests(localnet)
    with run_operator():
        apply(crds, settlement("first", namespace, [stack]))
        apply(crds, settlement("second", namespace, [stack]))
        a = wait_until(_ready(crds, namespace, "first"), timeout=90, what="first Ready")
        b = wait_until(_ready(crds, namespace, "second"), timeout=90, what="second Ready")
    after = _executed_digests(localnet)
    assert len(after) - len(before) == 1
    digests = [x["status"]["stacks"][0].get("txDigest") for x in (a, b)]
    assert sum(1 for d in digests if d) == 1
    for obj in (a, b):
        assert (
            obj["status"]["stacks"][0]["selectedNodeId"]
            == localnet.dev["badges"][0]["node_small_id"]
        )


def test_bad_proof_inputs_end_in_clear_conditions_and_send_nothing(
    crds: ControlPlane, localnet: Localnet, namespace: str, run_operator: Any
) -> None:
    stacks = localnet.dev["stacks"][:2]
    crds.kubectl(
        "create", "configmap", "bad-proof", "-n", namespace, "--from-literal=total=abcd" * 1
    )
    before = _executed_digests(localnet)
    with run_operator():
        apply(
            crds,
            settlement(
                "badref",
                namespace,
                stacks,
                proofs={
                    stacks[0]: {"valueFrom": {"configMapKeyRef": {"name": "missing", "key": "k"}}},
                    stacks[1]: {
                        "valueFrom": {"configMapKeyRef": {"name": "bad-proof", "key": "total"}}
                    },
                },
            ),
        )

        def waiting() -> dict[str, Any] | None:
            obj = get(crds, "stl", namespace, "badref")
            reconciling = condition(obj, "Reconciling") or {}
            return obj if reconciling.get("reason") == "WaitingForProofInput" else None

        # The missing ConfigMap is waited for (GitOps applies in any order), not failed.
        obj = wait_until(waiting, timeout=60, what="Reconciling WaitingForProofInput")
        assert not is_true(obj, "Stalled")
        entries = {s["stackSmallId"]: s for s in obj["status"]["stacks"]}
        assert entries[stacks[0]]["reason"] == "WaitingForProofInput"
        assert "waitingSince" in entries[stacks[0]]
        # It appears (with a bad value): picked up on the next look, then it fails too.
        crds.kubectl(
            "create", "configmap", "missing", "-n", namespace, "--from-literal=k=" + "zz" * 32
        )

        def stalled() -> dict[str, Any] | None:
            obj = get(crds, "stl", namespace, "badref")
            return obj if is_true(obj, "Stalled") else None

        obj = wait_until(stalled, timeout=60, what="Stalled")

        def event_posted() -> bool | None:
            # kopf posts Events in the background: wait while the operator still runs
            events = crds.kubectl(
                "get", "events", "-n", namespace,
                "--field-selector", "involvedObject.name=badref", "-o", "json",
            ).stdout  # fmt: skip
            return True if "InvalidProofInput" in events else None

        wait_until(event_posted, timeout=30, what="the InvalidProofInput Event")
    entries = {s["stackSmallId"]: s for s in obj["status"]["stacks"]}
    missing, bad = entries[stacks[0]]["lastError"], entries[stacks[1]]["lastError"]
    assert missing.startswith("Failed to get stack total hash")
    assert "not hex" in missing
    assert bad.startswith("Failed to get stack total hash")
    assert "multiple of 32" in bad
    assert condition(obj, "Stalled")["reason"] == "InvalidProofInput"  # type: ignore[index]
    assert _executed_digests(localnet) == before
