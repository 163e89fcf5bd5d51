"""Two operator replicas at once (a rollout overlap, replicas: 2): only the Lease holder
acts, and when it dies mid-run the standby takes over and finishes, sending nothing twice."""

from __future__ import annotations

import pytest
from e2e_support import is_true
from fault_support import Fleet, assert_exactly_once, poll


@pytest.mark.e2e
def test_two_replicas_one_acts_and_the_standby_finishes_once(fleet: Fleet) -> None:
    stacks = fleet.add_stacks(10)
    fleet.chain.admin("/faults", {"execute_latency": 0.2})  # a run the kill can interrupt
    leader = fleet.operator()
    standby = fleet.operator(standby=True)
    names = fleet.settle_each(stacks)
    poll(lambda: len(fleet.executions()) >= 3, timeout=60, what="three executions")
    assert "leading:" not in standby.log_text(), "both replicas lead at once"
    leader.kill()
    assert len(fleet.executions()) < len(stacks), "the run ended before the leader died"
    objs = fleet.wait_ready(names, timeout=180)
    assert "leading:" in standby.log_text(), "the standby never took over"
    assert not [n for n, o in objs.items() if is_true(o, "Stalled")]
    assert_exactly_once(fleet, objs, dict(zip(names, stacks, strict=True)))
    assert fleet.metric("atoma_operator_equivocation_refusals_total") == 0


@pytest.mark.e2e
def test_two_replicas_started_together_submit_nothing_twice(fleet: Fleet) -> None:
    stacks = fleet.add_stacks(10)
    names = fleet.settle_each(stacks)  # work waiting before either replica starts
    replicas = [fleet.operator(wait=False), fleet.operator(wait=False)]
    objs = fleet.wait_ready(names, timeout=120)
    assert_exactly_once(fleet, objs, dict(zip(names, stacks, strict=True)))
    leading = ["leading:" in r.log_text() for r in replicas]
    assert sorted(leading) == [False, True], "exactly one replica must lead"
    assert all(r.running() for r in replicas)
