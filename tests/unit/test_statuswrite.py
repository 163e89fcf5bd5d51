"""Conditional status writes through interference (`reconcile.statuswrite`)."""

from __future__ import annotations

from typing import Any

import pytest
from simworld import SimCluster

from atoma_operator.kube import ObjectKey
from atoma_operator.reconcile.statuswrite import (
    ConditionalStatusWriter,
    StaleStatus,
    merge_entries,
)
from atoma_operator.resources.stack_settlement import SettlementPhase, StackSettlementStatus

KEY = ObjectKey("StackSettlement", "ns", "stl")
PENDING = {
    "digest": "D1",
    "txBytes": "AA==",
    "signatures": ["AA=="],
    "gasCoin": {"objectId": "0x" + "1" * 64, "version": 3, "digest": "c3"},
    "gasBudget": 1000,
    "gasPrice": 1,
    "attempt": 1,
    "recordedAt": "2026-03-01T00:00:00Z",
}


def _status(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"stacks": list(entries)}


def test_untouched_entry_takes_the_fresh_version() -> None:
    base = _status({"stackSmallId": 1, "phase": "Settling"})
    ours = base
    fresh = _status({"stackSmallId": 1, "phase": "Settled", "settlementComplete": True})
    assert merge_entries(base, ours, fresh) == {"stack/1": fresh["stacks"][0]}


def test_a_wiped_status_never_erases_a_known_digest() -> None:
    base = _status({"stackSmallId": 1, "phase": "Submitting", "pending": PENDING})
    assert merge_entries(base, base, {}) == {}
    fresh = _status({"stackSmallId": 1, "phase": "Pending"})  # a partial wipe
    assert merge_entries(base, base, fresh) == {}


def test_someone_else_advancing_our_unit_makes_the_pass_stale() -> None:
    base = _status({"stackSmallId": 1, "phase": "Pending"})
    ours = _status({"stackSmallId": 1, "phase": "Submitting", "pending": PENDING})
    fresh = _status({"stackSmallId": 1, "phase": "Settling", "txDigest": "OTHER"})
    with pytest.raises(StaleStatus):
        merge_entries(base, ours, fresh)


def test_a_unit_recorded_by_another_writer_makes_the_pass_stale() -> None:
    fresh = _status({"stackSmallId": 9, "phase": "Submitting", "pending": PENDING})
    with pytest.raises(StaleStatus):
        merge_entries({}, _status({"stackSmallId": 1}), fresh)


async def _writer_against(cluster: SimCluster) -> tuple[ConditionalStatusWriter, Any]:
    cluster.create(KEY, {"stackSmallIds": [1, 2]})
    obj = await cluster.get(KEY)
    return ConditionalStatusWriter(cluster, KEY, obj), obj


async def test_a_label_between_read_and_write_is_merged_not_fatal() -> None:
    cluster = SimCluster()
    writer, _ = await _writer_against(cluster)
    cluster.label(KEY)  # kubectl label / Argo CD: metadata only, resourceVersion moves
    status = StackSettlementStatus.model_validate(
        _status({"stackSmallId": 1, "phase": "Submitting", "pending": PENDING})
    )
    await writer(status)
    stored = (await cluster.get(KEY))["status"]
    assert stored["stacks"][0]["pending"]["digest"] == "D1"
    assert writer.writes == 1


async def test_a_status_wipe_between_writes_is_written_back() -> None:
    cluster = SimCluster()
    writer, _ = await _writer_against(cluster)
    status = StackSettlementStatus.model_validate(
        _status({"stackSmallId": 1, "phase": "Submitting", "pending": PENDING})
    )
    await writer(status)
    cluster.wipe(KEY)
    await writer(status)
    assert (await cluster.get(KEY))["status"]["stacks"][0]["pending"]["digest"] == "D1"


async def test_a_follower_update_of_another_entry_is_kept() -> None:
    cluster = SimCluster()
    writer, _ = await _writer_against(cluster)
    status = StackSettlementStatus.model_validate(
        _status({"stackSmallId": 1, "phase": "Pending"}, {"stackSmallId": 2, "phase": "Settling"})
    )
    await writer(status)
    obj = await cluster.get(KEY)
    obj["status"]["stacks"][1] = {"stackSmallId": 2, "phase": "Settled", "settlementComplete": True}
    await cluster.patch_status(KEY, obj["status"], obj["metadata"]["resourceVersion"])
    status.stacks[0].phase = SettlementPhase.SUBMITTING
    status.stacks[0].attempts = 1
    await writer(status)
    stored = (await cluster.get(KEY))["status"]["stacks"]
    assert stored[0]["phase"] == "Submitting"
    assert stored[1]["phase"] == "Settled", "the follower's write was overwritten"
    assert status.stacks[1].settlement_complete is True, "the live model was not refreshed"
