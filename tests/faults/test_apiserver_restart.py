"""kube-apiserver restarted mid-run: the operator recovers and finishes, once per stack.

While the apiserver is down the operator cannot renew its leader Lease; when the lease
runs out it exits on purpose (a standby, or the kubelet restarting the pod, takes over,
as with controller-runtime). The test plays the kubelet: an exited replica is started
again, and the work must still end with exactly one transaction per stack.
"""

from __future__ import annotations

import pytest
from fault_support import Fleet, assert_exactly_once, poll


@pytest.mark.e2e
def test_operator_finishes_after_an_apiserver_restart(fleet: Fleet) -> None:
    stacks = fleet.add_stacks(8)
    fleet.chain.admin("/faults", {"execute_latency": 0.3})  # keep the run going for a while
    proc = fleet.operator()
    names = fleet.settle_each(stacks)
    poll(lambda: len(fleet.executions()) >= 2, timeout=60, what="two executions")
    fleet.plane.restart_apiserver()
    assert len(fleet.executions()) < len(stacks), "the run ended before the restart"
    objs = fleet.wait_ready(names, timeout=240, supervise=True)
    assert_exactly_once(fleet, objs, dict(zip(names, stacks, strict=True)))
    log = proc.log_text()
    if fleet.revived:
        assert "lost lease" in log, "the operator exited for another reason than its lease"
    print(f"operator restarts after the apiserver restart: {fleet.revived}")
