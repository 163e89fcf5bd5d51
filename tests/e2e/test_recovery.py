"""Crashes and outages: after a restart the operator finishes with one transaction per
stack and no manual step; an unavailable chain is waited out without a hot loop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Localnet, OperatorProcess, apply, get, is_true, settlement, wait_until

from atoma_dev.controlplane import ControlPlane

pytestmark = pytest.mark.e2e


@pytest.fixture
def operator_process(operator_env: dict[str, str], tmp_path: Path) -> Iterator[OperatorProcess]:
    env = dict(operator_env)
    env["ATOMA_RETRY_BASE_SECONDS"] = "3"  # a window to kill it while the intent is pending
    proc = OperatorProcess(env, tmp_path / "operator.log")
    yield proc
    proc.stop()


def _pending(cp: ControlPlane, ns: str, name: str) -> dict[str, Any] | None:
    obj = get(cp, "stl", ns, name)
    stacks = (obj.get("status") or {}).get("stacks") or []
    return stacks[0]["pending"] if stacks and stacks[0].get("pending") else None


def _ready(cp: ControlPlane, ns: str, name: str) -> dict[str, Any] | None:
    obj = get(cp, "stl", ns, name)
    return obj if is_true(obj, "Ready") else None


def test_killed_after_execution_before_recording_the_result(
    crds: ControlPlane, localnet: Localnet, namespace: str, operator_process: OperatorProcess
) -> None:
    stack = localnet.dev["stacks"][0]
    localnet.admin("/faults", {"lose_responses": 1})  # executes, then the answer is lost
    operator_process.start()
    apply(crds, settlement("lost", namespace, [stack]))
    pending = wait_until(lambda: _pending(crds, namespace, "lost"), timeout=60, what="intent")
    wait_until(
        lambda: localnet.executions(pending["digest"]) == 1 or None,
        timeout=30,
        what="the stand-in to execute the recorded transaction",
    )
    operator_process.kill()
    obj = get(crds, "stl", namespace, "lost")
    assert obj["status"]["stacks"][0].get("pending", {}).get("digest") == pending["digest"]
    assert not is_true(obj, "Ready")

    operator_process.start()
    obj = wait_until(lambda: _ready(crds, namespace, "lost"), timeout=60, what="Ready")
    entry = obj["status"]["stacks"][0]
    assert entry["txDigest"] == pending["digest"]
    assert "pending" not in entry
    assert localnet.executions(pending["digest"]) == 1
    assert len(localnet.counters()["executions"]) == 1


def test_chain_outage_is_waited_out_without_a_hot_loop(
    crds: ControlPlane, localnet: Localnet, namespace: str, run_operator: Any
) -> None:
    stacks = localnet.dev["stacks"][:2]
    outage = 4.0
    with run_operator():
        localnet.admin("/counters/reset", {})
        localnet.admin("/faults", {"unavailable": True, "unavailable_seconds": outage})
        apply(crds, settlement("outage", namespace, stacks))
        obj = wait_until(lambda: _ready(crds, namespace, "outage"), timeout=90, what="Ready")
    counters = localnet.counters()
    down_calls = sum(counters["calls_while_down"].values())
    assert down_calls > 0, "the outage was not observed"
    # follower polls and handler retries back off: a hot loop would make hundreds of calls
    assert down_calls <= 40, counters["calls_while_down"]
    assert len(obj["status"]["txDigests"]) == 2
    for digest in obj["status"]["txDigests"]:
        assert localnet.executions(digest) == 1


def test_killed_after_recording_intent_before_execution(
    crds: ControlPlane, localnet: Localnet, namespace: str, operator_process: OperatorProcess
) -> None:
    stack = localnet.dev["stacks"][0]
    localnet.admin("/faults", {"drop_executions": 1000})  # nothing reaches execution
    operator_process.start()
    apply(crds, settlement("early", namespace, [stack]))
    pending = wait_until(lambda: _pending(crds, namespace, "early"), timeout=60, what="intent")
    operator_process.kill()
    assert localnet.executions(pending["digest"]) == 0
    assert localnet.counters()["executions"] == {}
    localnet.admin("/faults/clear", {})

    operator_process.start()
    obj = wait_until(lambda: _ready(crds, namespace, "early"), timeout=60, what="Ready")
    entry = obj["status"]["stacks"][0]
    # the same signed bytes were re-sent: the digest recorded before the crash executed
    assert entry["txDigest"] == pending["digest"]
    assert localnet.executions(pending["digest"]) == 1
    assert list(localnet.counters()["executions"]) == [pending["digest"]]


def test_two_replicas_one_leader_no_double_submission(
    crds: ControlPlane,
    localnet: Localnet,
    namespace: str,
    operator_env: dict[str, str],
    tmp_path: Path,
) -> None:
    replicas = [
        OperatorProcess(
            {**operator_env, "ATOMA_LEADER_IDENTITY": f"pod-{i}"}, tmp_path / f"op{i}.log"
        )
        for i in range(2)
    ]
    try:
        for replica in replicas:
            replica.start()
        stacks = localnet.dev["stacks"][:3]
        apply(crds, settlement("first", namespace, stacks[:2]))
        wait_until(lambda: _ready(crds, namespace, "first"), timeout=60, what="first Ready")
        wait_until(
            lambda: (
                all("leading: holding" in r.log() or "standby: lease" in r.log() for r in replicas)
                or None
            ),
            timeout=60,
            what="both replicas to start (one leading, one standby)",
        )
        leaders = [r for r in replicas if "leading: holding lease" in r.log()]
        standbys = [r for r in replicas if "standby: lease" in r.log()]
        assert len(leaders) == 1 and len(standbys) == 1
        # the leader dies; the standby takes over once the Lease expires and settles the rest
        leaders[0].kill()
        apply(crds, settlement("second", namespace, stacks[2:]))
        wait_until(lambda: _ready(crds, namespace, "second"), timeout=90, what="second Ready")
        assert "leading: holding lease" in standbys[0].log()
    finally:
        for replica in replicas:
            replica.stop()
    executions = localnet.counters()["executions"]
    assert len(executions) == 3 and set(executions.values()) == {1}
