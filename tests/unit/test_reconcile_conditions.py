"""Conditions (kstatus): Ready always present, transition times move only on a flip."""

from __future__ import annotations

from typing import Any

import pytest

from atoma_operator.reconcile.conditions import (
    READY,
    RECONCILING,
    SETTLED,
    STALLED,
    Summary,
    apply_summary,
    condition_status,
    set_condition,
)
from atoma_operator.reconcile.settlement import with_summary
from atoma_operator.resources.common import Condition

T1 = "2026-03-01T12:00:00Z"
T2 = "2026-03-01T12:05:00Z"
T3 = "2026-03-01T12:10:00Z"

WORKING = Summary(False, True, False, "Submitting", "1/2 stacks submitted")
STUCK = Summary(False, False, True, "InvalidProofInput", "stack 4: bad hex")
DONE = Summary(True, False, False, "Settled", "all 2 stacks settled", settled=True)


def by_type(conds: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in conds}


def test_transition_time_moves_only_when_status_flips() -> None:
    first = set_condition([], READY, False, "Starting", "starting", 1, now=T1)
    same = set_condition(first, READY, False, "Submitting", "1/2 submitted", 2, now=T2)
    [c] = same
    assert c["lastTransitionTime"] == T1  # still False: no transition
    assert (c["reason"], c["message"], c["observedGeneration"]) == (
        "Submitting",
        "1/2 submitted",
        2,
    )
    flipped = set_condition(same, READY, True, "Settled", "done", 2, now=T3)
    assert flipped[0]["lastTransitionTime"] == T3
    assert flipped[0]["status"] == "True"


def test_set_condition_leaves_other_types_and_its_input_alone() -> None:
    start = [{"type": "Other", "status": "True", "reason": "X", "message": ""}]
    out = set_condition(start, READY, True, "Ok", "", 1, now=T1)
    assert [c["type"] for c in out] == ["Other", READY]
    assert out[0] == start[0] and out[0] is not start[0]
    assert len(start) == 1


def test_messages_are_cut_to_the_condition_bound() -> None:
    [c] = set_condition([], READY, False, "Long", "x" * 5000, 1, now=T1)
    assert len(c["message"]) == 1024


def test_apply_summary_always_writes_ready_reconciling_stalled() -> None:
    conds = by_type(apply_summary([], WORKING, 3, now=T1))
    assert set(conds) == {READY, RECONCILING, STALLED}  # Settled only when known
    assert conds[READY]["status"] == "False"
    assert (conds[RECONCILING]["status"], conds[RECONCILING]["reason"]) == ("True", "Submitting")
    assert (conds[STALLED]["status"], conds[STALLED]["reason"]) == ("False", "NotStalled")
    assert all(c["observedGeneration"] == 3 for c in conds.values())


def test_stalled_summary_and_then_settled() -> None:
    working = apply_summary([], WORKING, 1, now=T1)
    stuck = by_type(apply_summary(working, STUCK, 1, now=T2))
    assert (stuck[STALLED]["status"], stuck[STALLED]["reason"]) == ("True", "InvalidProofInput")
    assert stuck[STALLED]["lastTransitionTime"] == T2
    assert stuck[READY]["lastTransitionTime"] == T1  # Ready stayed False
    assert (stuck[RECONCILING]["status"], stuck[RECONCILING]["reason"]) == ("False", "Idle")
    assert stuck[RECONCILING]["message"] == ""

    done = by_type(apply_summary(working, DONE, 2, now=T3))
    assert done[READY]["status"] == "True" and done[READY]["lastTransitionTime"] == T3
    assert (done[SETTLED]["status"], done[SETTLED]["reason"]) == ("True", "SettlementComplete")
    assert all(c["observedGeneration"] == 2 for c in done.values())


@pytest.mark.parametrize(
    ("summary", "ready", "stalled"),
    [(WORKING, "False", "False"), (STUCK, "False", "True"), (DONE, "True", "False")],
)
def test_condition_status_reads_back(summary: Summary, ready: str, stalled: str) -> None:
    conds = apply_summary([], summary, 1, now=T1)
    assert condition_status(conds, READY) == ready
    assert condition_status(conds, STALLED) == stalled
    assert condition_status(conds, "Missing") is None


def test_with_summary_round_trips_through_the_model() -> None:
    first = with_summary([], WORKING, 1)
    assert all(isinstance(c, Condition) for c in first)
    ready_at = next(c for c in first if c.type == READY).last_transition_time
    again = with_summary(first, STUCK, 2)
    ready = next(c for c in again if c.type == READY)
    assert ready.last_transition_time == ready_at  # Ready stayed False
    assert ready.observed_generation == 2
    assert ready.reason == "InvalidProofInput"
