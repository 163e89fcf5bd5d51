"""Many concurrent submissions over few gas coins: no coin is ever used twice at once.

Four badges (one per node) let four transactions be in flight together, so the four
gas coins are really contended; a coin leased twice would show as a refusal (the
operator's metric) and as an ExecuteTransaction call that executed nothing.
"""

from __future__ import annotations

import pytest
from e2e_support import settlement
from fault_support import Fleet, assert_exactly_once

COINS = 4


def run_concurrent(fleet: Fleet, submissions: int, timeout: float) -> None:
    coins = fleet.chain.admin(f"/coins/{fleet.chain.dev['address']}")["coins"]
    assert len(coins) == COINS, "the stand-in's dev key should start with four gas coins"
    badges = fleet.add_badges(4)
    stacks: dict[str, int] = {}
    manifests = []
    for i in range(submissions):
        node = badges[i % len(badges)]["node_small_id"]
        (sid,) = fleet.add_stacks(1, node=node)
        name = f"c{i:04d}"
        stacks[name] = sid
        manifests.append(settlement(name, fleet.ns, [sid], nodeSmallId=node))
    fleet.operator(ATOMA_CONCURRENCY=str(COINS))
    fleet.chain.admin("/counters/reset", {})
    fleet.create(manifests, threads=16)
    objs = fleet.wait_ready(list(stacks), timeout=timeout)
    assert_exactly_once(fleet, objs, stacks)
    assert fleet.metric("atoma_operator_equivocation_refusals_total") == 0
    calls = fleet.calls()
    assert calls.get("ExecuteTransaction", 0) == submissions, calls


@pytest.mark.e2e
def test_forty_concurrent_submissions_over_four_coins(fleet: Fleet) -> None:
    run_concurrent(fleet, 40, timeout=180)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_five_hundred_concurrent_submissions_over_four_coins(fleet: Fleet) -> None:
    run_concurrent(fleet, 500, timeout=900)
