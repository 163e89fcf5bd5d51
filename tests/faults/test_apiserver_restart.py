"""kube-apiserver restarted mid-run: the operator reconnects and finishes, once per stack."""

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
    objs = fleet.wait_ready(names, timeout=240)
    assert_exactly_once(fleet, objs, dict(zip(names, stacks, strict=True)))
    assert proc.running(), "the operator died instead of reconnecting"
