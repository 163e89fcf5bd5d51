"""The claimed-stacks view (seed 000) fed by parsed events: kept only for the
operator's badges, the seed's JSON shape, bounded by retention, one write per node."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from atoma_operator.atoma.events import (
    NewStackSettlementAttestationEvent,
    StackAttestationDisputeEvent,
    StackSettlementTicketEvent,
    StackTrySettleEvent,
)
from atoma_operator.claimed import CLAIMED_STACKS, DATA_KEY, NODE_LABEL, ClaimedStacks

AT = datetime(2024, 3, 21, 12, 0, tzinfo=UTC)
LEAF = b"\x00" * 32


def try_settle(sid: int, node: int, attesters: tuple[int, ...] = (456, 789)) -> StackTrySettleEvent:
    return StackTrySettleEvent("d", 0, sid, node, attesters, LEAF, LEAF, 1000)


def attest(sid: int, node: int) -> NewStackSettlementAttestationEvent:
    return NewStackSettlementAttestationEvent("d", 1, sid, node, LEAF, LEAF)


def test_seed_shape_and_progress() -> None:
    view = ClaimedStacks([123])
    view.observe(try_settle(1, 123), at=AT)
    view.observe(attest(1, 456), at=AT)
    view.observe(attest(1, 456), at=AT)  # a replayed event counts once
    view.observe(try_settle(1, 123), at=AT)  # a replayed page does not reset the ticket
    assert view.seed_json() == [
        {
            "stack_small_id": 1,
            "stack_id": "1",
            "selected_node_id": 123,
            "num_claimed_compute_units": 1000,
            "settlement_time": "2024-03-21T12:00:00Z",
            "attestation_status": "Pending",
            "requested_attestation_nodes": "[456, 789]",
            "received_attestations": 1,
            "required_attestations": 2,
            "settlement_complete": False,
        }
    ]
    view.observe(StackSettlementTicketEvent("d", 2, 1, 123, 1000, (456, 789), 5, LEAF), at=AT)
    (done,) = view.seed_json(123)
    assert (done["attestation_status"], done["received_attestations"]) == ("Complete", 2)
    assert done["settlement_complete"] is True


def test_only_tickets_involving_a_badge_are_kept() -> None:
    view = ClaimedStacks([456])
    view.observe(try_settle(1, 123, (456,)), at=AT)  # we are an attestation node
    view.observe(try_settle(2, 123, (999,)), at=AT)  # not ours at all
    view.observe(attest(2, 999), at=AT)
    assert [s["stack_small_id"] for s in view.seed_json()] == [1]
    # Filed under the badge it involves, whichever role the badge has in the ticket.
    assert view.seed_json(456) == view.seed_json() and view.seed_json(123) == []


def test_dispute_is_failed() -> None:
    view = ClaimedStacks([123])
    view.observe(try_settle(1, 123), at=AT)
    view.observe(StackAttestationDisputeEvent("d", 1, 1, LEAF, 456, 123, LEAF), at=AT)
    assert view.seed_json()[0]["attestation_status"] == "Failed"


async def test_retention_bounds_100000_tickets_and_one_write_per_node() -> None:
    view = ClaimedStacks([7, 8], retention=500)
    for sid in range(100_000):
        view.observe(try_settle(sid, 7 if sid % 2 else 8), at=AT)
    assert len(view.stacks(7)) == 500 and len(view.stacks(8)) == 500
    assert len(view.stacks()) == 1000  # memory bounded too
    assert view.stacks(7)[-1].stack_small_id == 99_999  # the newest are kept
    writes: list[tuple[str, dict[str, str], dict[str, str]]] = []

    async def put(name: str, labels: dict[str, str], data: dict[str, str]) -> None:
        writes.append((name, labels, data))

    assert await view.flush(put) == 2
    assert [(n, lab[NODE_LABEL]) for n, lab, _ in writes] == [
        ("atoma-claimed-stacks-node-7", "7"),
        ("atoma-claimed-stacks-node-8", "8"),
    ]
    assert all(len(d[DATA_KEY]) < 1 << 20 for _, _, d in writes)  # fits a ConfigMap
    assert len(json.loads(writes[0][2][DATA_KEY])) == 500
    assert await view.flush(put) == 0  # nothing changed: nothing written
    assert CLAIMED_STACKS.labels("7", "Pending")._value.get() == 500


async def test_failed_write_is_retried_on_the_next_flush() -> None:
    view = ClaimedStacks([7, 8])
    view.observe(try_settle(1, 7), at=AT)
    view.observe(try_settle(2, 8), at=AT)

    async def fail(name: str, labels: dict[str, str], data: dict[str, str]) -> None:
        raise ConnectionError("apiserver down")

    with pytest.raises(ConnectionError):
        await view.flush(fail)
    names: list[str] = []

    async def put(name: str, labels: dict[str, str], data: dict[str, str]) -> None:
        names.append(name)

    assert await view.flush(put) == 2 and len(names) == 2


async def test_restart_restores_the_summaries_and_keeps_counting() -> None:
    view = ClaimedStacks([123])
    view.observe(try_settle(1, 123), at=AT)
    view.observe(attest(1, 456), at=AT)
    stored: dict[str, dict[str, str]] = {}

    async def put(name: str, labels: dict[str, str], data: dict[str, str]) -> None:
        stored[name] = data

    await view.flush(put)
    records = [r for d in stored.values() for r in json.loads(d[DATA_KEY])]
    restarted = ClaimedStacks([123])
    assert restarted.restore(records) == 1
    assert restarted.seed_json() == view.seed_json()
    restarted.observe(attest(1, 456), at=AT)  # already counted before the restart
    restarted.observe(attest(1, 789), at=AT)
    assert restarted.seed_json()[0]["received_attestations"] == 2
