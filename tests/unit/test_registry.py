"""The stack -> resources index the chain follower reads (fed by kopf's watch events)."""

from __future__ import annotations

from typing import Any

from atoma_operator.kube import ObjectKey
from atoma_operator.registry import StackRegistry

STL = "StackSettlement"
ATST = "Attestation"


def body(
    name: str,
    stacks: list[int],
    conditions: dict[str, str] | None = None,
    ns: str = "ns",
    phases: list[str] | None = None,
) -> dict[str, Any]:
    conds = [
        {"type": t, "status": s, "reason": "R", "message": ""}
        for t, s in (conditions or {}).items()
    ]
    entries = [
        {"stackSmallId": sid, "phase": p} for sid, p in zip(stacks, phases or [], strict=False)
    ]
    return {
        "metadata": {"namespace": ns, "name": name},
        "spec": {"stackSmallIds": stacks},
        "status": {"conditions": conds, "stacks": entries},
    }


def key(name: str, kind: str = STL, ns: str = "ns") -> ObjectKey:
    return ObjectKey(kind, ns, name)


def test_added_resources_are_indexed_by_stack() -> None:
    reg = StackRegistry()
    reg.observe(STL, "ADDED", body("a", [1, 2]))
    reg.observe(ATST, "ADDED", body("b", [2, 3]))
    assert reg.resources_for(1) == {key("a")}
    assert reg.resources_for(2) == {key("a"), key("b", ATST)}
    assert reg.resources_for(4) == set()
    assert reg.stacks_of(key("b", ATST)) == frozenset({2, 3})
    assert len(reg) == 2


def test_same_name_in_two_namespaces_or_kinds_are_distinct() -> None:
    reg = StackRegistry()
    reg.observe(STL, "ADDED", body("a", [1], ns="x"))
    reg.observe(STL, "ADDED", body("a", [1], ns="y"))
    reg.observe(ATST, "ADDED", body("a", [1], ns="x"))
    assert len(reg.resources_for(1)) == 3


def test_modified_moves_stacks() -> None:
    reg = StackRegistry()
    reg.observe(STL, "ADDED", body("a", [1, 2]))
    reg.observe(STL, "MODIFIED", body("a", [2, 5]))
    assert reg.resources_for(1) == set()
    assert reg.resources_for(2) == {key("a")}
    assert reg.resources_for(5) == {key("a")}
    assert reg.stacks_of(key("a")) == frozenset({2, 5})


def test_deleted_forgets_everything() -> None:
    reg = StackRegistry()
    reg.observe(STL, "ADDED", body("a", [1]))
    reg.observe(STL, "ADDED", body("b", [1]))
    reg.observe(STL, "DELETED", body("a", [1]))
    assert reg.resources_for(1) == {key("b")}
    assert key("a") not in set(reg.open_resources())
    assert reg.stacks_of(key("a")) == frozenset()
    assert STL in reg.condition_counts() and sum(reg.condition_counts()[STL].values()) == 1
    reg.forget(key("b"))
    assert reg.resources_for(1) == set() and len(reg) == 0
    assert reg.condition_counts() == {}


def test_initial_listing_event_type_none_counts_as_added() -> None:
    reg = StackRegistry()
    reg.observe(STL, None, body("a", [7]))
    assert reg.resources_for(7) == {key("a")}


def test_open_until_every_entry_is_final() -> None:
    reg = StackRegistry()
    reg.observe(STL, "ADDED", body("new", [1]))
    reg.observe(STL, "ADDED", body("working", [2], {"Reconciling": "True"}, phases=["Submitting"]))
    reg.observe(STL, "ADDED", body("submitted", [3], {"Ready": "True"}, phases=["Settling"]))
    reg.observe(STL, "ADDED", body("settled", [4], {"Ready": "True"}, phases=["Settled"]))
    reg.observe(STL, "ADDED", body("failed", [5], {"Stalled": "True"}, phases=["Failed"]))
    # Stalled by one failed stack, but the other still waits for the chain: stays open
    reg.observe(
        STL, "ADDED", body("mixed", [8, 9], {"Stalled": "True"}, phases=["Failed", "Settling"])
    )
    reg.observe(ATST, "ADDED", body("attested", [6], {"Ready": "True"}, phases=["Attested"]))
    assert set(reg.open_resources()) == {
        key("new"),
        key("working"),
        key("submitted"),  # waits for attestations and the dispute period
        key("mixed"),
        key("attested", ATST),
    }
    # Final resources cost nothing per object: not indexed by stack any more (a later
    # claim shows in the claimed-stacks view), only counted for the condition gauge.
    assert reg.resources_for(4) == set() and reg.resources_for(5) == set()
    assert reg.condition_counts()[STL]["Ready"] == 2  # submitted (open), settled (final)
    reg.observe(STL, "MODIFIED", body("working", [2], {"Stalled": "True"}, phases=["Disputed"]))
    assert key("working") not in set(reg.open_resources())


def test_condition_counts_per_kind() -> None:
    reg = StackRegistry()
    reg.observe(STL, "ADDED", body("a", [1], {"Ready": "True"}))
    reg.observe(STL, "ADDED", body("b", [2], {"Ready": "False", "Stalled": "True"}))
    reg.observe(STL, "ADDED", body("c", [3]))
    reg.observe(STL, "ADDED", body("d", [4], {"Ready": "True", "Stalled": "True"}))
    reg.observe(ATST, "ADDED", body("e", [5], {"Ready": "True"}))
    assert reg.condition_counts() == {
        STL: {"Ready": 1, "Reconciling": 1, "Stalled": 2},  # Stalled wins over Ready
        ATST: {"Ready": 1, "Reconciling": 0, "Stalled": 0},
    }
    reg.observe(STL, "MODIFIED", body("c", [3], {"Ready": "True"}))
    assert reg.condition_counts()[STL] == {"Ready": 2, "Reconciling": 0, "Stalled": 2}


def _final(name: str, *, ttl: int | None = None, pending: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"stackSmallId": 1, "phase": "Settled"}
    if pending:
        entry["pending"] = {"digest": "D"}
    obj: dict[str, Any] = {
        "metadata": {"namespace": "ns", "name": name, "uid": f"uid-{name}"},
        "spec": {"stackSmallIds": [1]},
        "status": {
            "stacks": [entry],
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-03-01T00:00:00Z"},
                {
                    "type": "Reconciling",
                    "status": "False",
                    "lastTransitionTime": "2026-02-28T00:00:00Z",
                },
            ],
        },
    }
    if ttl is not None:
        obj["spec"]["ttlSecondsAfterFinished"] = ttl
    return obj


def test_retention_is_due_after_the_resources_own_ttl_or_the_default() -> None:
    from datetime import UTC, datetime, timedelta

    from atoma_operator.retention import due

    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    reg = StackRegistry(retain_finished=True)  # the operator's TTL is set
    reg.observe(STL, "ADDED", _final("own", ttl=10))
    reg.observe(STL, "ADDED", _final("dflt"))
    reg.observe(STL, "ADDED", _final("busy", pending=True))

    def names(now: datetime, ttl: float | None) -> list[str]:
        return sorted(k.name for k, _ in due(reg.finished(), ttl, now))

    assert names(t0 + timedelta(seconds=9), None) == []
    assert names(t0 + timedelta(seconds=10), None) == ["own"]
    assert names(t0 + timedelta(seconds=10), 5) == ["dflt", "own"]
    assert reg.finished()[key("own")].uid == "uid-own"
    reg.observe(STL, "DELETED", _final("own", ttl=10))
    assert names(t0 + timedelta(days=1), 5) == ["dflt"]


def test_without_a_ttl_finished_resources_are_not_remembered() -> None:
    reg = StackRegistry()  # no operator TTL: only a resource's own TTL makes it due
    reg.observe(STL, "ADDED", _final("own", ttl=10))
    reg.observe(STL, "ADDED", _final("dflt"))
    assert set(reg.finished()) == {key("own")}
