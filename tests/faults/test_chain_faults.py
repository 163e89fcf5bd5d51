"""The chain misbehaves: answers lost after execution, and the node down for a while.

Everything completes afterwards with one execution per stack, and while the node is
down the operator backs off: the calls it makes grow with log(cap/base) + outage/cap
per waiting actor (each resource's retry, the follower), not with outage/poll interval.
"""

from __future__ import annotations

import math

import pytest
from fault_support import Fleet, assert_exactly_once

RETRY_BASE, RETRY_MAX = 0.5, 4.0  # e2e_support.Localnet.operator_env's backoff settings
CALLS_PER_ATTEMPT = 2  # an attempt stops at its first failed call (margin: one more)


@pytest.mark.e2e
def test_lost_responses_are_looked_up_never_sent_twice(fleet: Fleet) -> None:
    stacks = fleet.add_stacks(6)
    fleet.chain.admin("/faults", {"lose_responses": 3})
    fleet.operator()
    names = fleet.settle_each(stacks)
    objs = fleet.wait_ready(names, timeout=120)
    assert_exactly_once(fleet, objs, dict(zip(names, stacks, strict=True)))
    lost = fleet.chain.counters()["lost_responses"]
    assert len(lost) == 3
    recorded = {s["txDigest"] for o in objs.values() for s in o["status"]["stacks"]}
    assert set(lost) <= recorded, "a transaction whose answer was lost was replaced"


def calls_bound(actors: int, outage: float) -> int:
    """Most calls `actors` backing-off retriers make during `outage` seconds."""
    attempts = math.ceil(math.log2(RETRY_MAX / RETRY_BASE)) + 1 + math.ceil(outage / RETRY_MAX)
    return actors * attempts * CALLS_PER_ATTEMPT


def run_outage(fleet: Fleet, *, outage: float, resources: int) -> None:
    stacks = fleet.add_stacks(resources)
    fleet.operator()
    fleet.chain.admin("/counters/reset", {})
    fleet.chain.admin("/faults", {"unavailable": True, "unavailable_seconds": outage})
    names = fleet.settle_each(stacks)
    objs = fleet.wait_ready(names, timeout=outage + 120)
    assert_exactly_once(fleet, objs, dict(zip(names, stacks, strict=True)))
    down = fleet.chain.counters()["calls_while_down"]
    total = sum(down.values())
    bound = calls_bound(resources + 1, outage)  # each resource, plus the follower
    print(f"outage {outage}s: {total} calls while down (bound {bound}): {down}")
    assert total > 0, "the outage was not observed"
    assert total <= bound, down


@pytest.mark.e2e
def test_short_outage_completes_with_bounded_calls(fleet: Fleet) -> None:
    run_outage(fleet, outage=12, resources=4)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sixty_second_outage_completes_with_bounded_calls(fleet: Fleet) -> None:
    run_outage(fleet, outage=60, resources=10)
