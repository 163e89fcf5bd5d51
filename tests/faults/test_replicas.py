"""Two operator replicas at once (a rollout overlap, a mis-set replica count)."""

from __future__ import annotations

import pytest
from e2e_support import is_true
from fault_support import Fleet, assert_exactly_once


@pytest.mark.e2e
def test_two_replicas_submit_nothing_twice(fleet: Fleet) -> None:
    stacks = fleet.add_stacks(10)
    fleet.operator()
    fleet.operator()
    names = fleet.settle_each(stacks)
    objs = fleet.wait_ready(names, timeout=180)
    assert not [n for n, o in objs.items() if is_true(o, "Stalled")]
    assert_exactly_once(fleet, objs, dict(zip(names, stacks, strict=True)))
    assert fleet.metric("atoma_operator_equivocation_refusals_total") == 0
