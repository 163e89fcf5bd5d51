"""kill -9 of the operator at random moments across many submissions, restarted each time.

Kills are triggered by progress (the stand-in's executed-transaction count crossing
random thresholds) so they land during the run, not before or after it; a small
execution latency keeps transactions in flight long enough for a kill to catch one
between its recorded intent and its effects.
"""

from __future__ import annotations

import random
import time

import pytest
from e2e_support import is_true
from fault_support import Fleet, assert_exactly_once

DISPUTE_EPOCHS = 2  # the stand-in's dispute period (1 epoch) plus one, to be over it


def run_kills(fleet: Fleet, *, submissions: int, kills: int, seed: int, timeout: float) -> None:
    rng = random.Random(seed)
    stacks = fleet.add_stacks(submissions)
    fleet.chain.admin("/faults", {"execute_latency": 0.05})
    proc = fleet.operator()
    names = fleet.settle_each(stacks)
    by_name = dict(zip(names, stacks, strict=True))
    thresholds = sorted(rng.sample(range(submissions), kills))
    done_kills = 0
    deadline = time.monotonic() + timeout
    while thresholds and time.monotonic() < deadline:
        executed = len(fleet.executions())
        if executed >= thresholds[0]:
            time.sleep(rng.uniform(0, 0.1))  # a random moment within this stretch of work
            proc.kill()
            done_kills += 1
            while thresholds and thresholds[0] <= executed:
                thresholds.pop(0)
            proc.start(timeout=90)
        else:
            time.sleep(0.05)  # polling the stand-in's counters with a deadline
    assert done_kills > 0, f"no kill happened (seed {seed})"
    left = max(deadline - time.monotonic(), 60)
    objs = fleet.wait_ready(names, timeout=left)
    assert not [n for n, o in objs.items() if is_true(o, "Stalled")]
    assert_exactly_once(fleet, objs, by_name)
    # The final state: once the dispute period is over the follower marks them Settled.
    for _ in range(DISPUTE_EPOCHS):
        fleet.chain.admin("/epoch/advance", {})
    settled = fleet.wait_for(
        names, lambda o: is_true(o, "Settled"), timeout=120, what="Settled (final)"
    )
    assert all(o["status"]["stacks"][0]["phase"] == "Settled" for o in settled.values())
    assert proc.starts == done_kills + 1


@pytest.mark.e2e
def test_kill9_at_random_moments_every_stack_settles_once(fleet: Fleet) -> None:
    seed = random.randrange(2**32)
    print(f"kill seed: {seed}")
    run_kills(fleet, submissions=15, kills=3, seed=seed, timeout=240)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_kill9_twenty_times_across_two_hundred_submissions(fleet: Fleet) -> None:
    seed = random.randrange(2**32)
    print(f"kill seed: {seed}")
    run_kills(fleet, submissions=200, kills=20, seed=seed, timeout=1500)
