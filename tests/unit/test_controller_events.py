"""Which watch events start a pass: a creation or first sight, a spec change; never a
label, an annotation or the echo of our own status write; nothing kept for final ones."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from atoma_operator.controller import Controller, needs_pass, observed_generation
from atoma_operator.kube import ObjectKey
from atoma_operator.reconcile.holds import HoldBook
from atoma_operator.registry import StackRegistry

STL = "StackSettlement"
KEY = ObjectKey(STL, "ns", "s")


class _Gas:
    def on_available(self, listener: Any) -> None:
        self.listener = listener


def _controller() -> Controller:
    holds = HoldBook()
    runtime = SimpleNamespace(
        registry=StackRegistry(holds),
        ctx=SimpleNamespace(holds=holds, gas=_Gas()),
        settings=SimpleNamespace(retry_max_seconds=60.0),
    )
    return Controller(runtime, None, workers=1)  # type: ignore[arg-type]


def _body(
    *, generation: int = 1, status: dict[str, Any] | None = None, **meta: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"namespace": "ns", "name": "s", "generation": generation, **meta},
        "spec": {"stackSmallIds": [1]},
    }
    if status is not None:
        body["status"] = status
    return body


def _submitting(generation: int = 1) -> dict[str, Any]:
    return {
        "observedGeneration": generation,
        "stacks": [{"stackSmallId": 1, "phase": "Submitting"}],
        "conditions": [{"type": "Reconciling", "status": "True", "observedGeneration": generation}],
    }


def _settled() -> dict[str, Any]:
    return {
        "observedGeneration": 1,
        "stacks": [{"stackSmallId": 1, "phase": "Settled", "claimed": True}],
        "conditions": [{"type": "Ready", "status": "True", "observedGeneration": 1}],
    }


@pytest.mark.parametrize(
    ("status", "want"),
    [
        ({}, 0),
        ({"observedGeneration": 3}, 3),
        ({"conditions": [{"type": "Ready", "observedGeneration": 2}]}, 2),  # older writes
    ],
)
def test_observed_generation(status: dict[str, Any], want: int) -> None:
    assert observed_generation({"status": status}) == want


def test_first_sight_and_spec_changes_need_a_pass_nothing_else() -> None:
    assert needs_pass(_body(), first_seen=True)
    assert not needs_pass(_body(status=_submitting()), first_seen=False)
    assert needs_pass(_body(generation=2, status=_submitting(1)), first_seen=False)
    assert needs_pass(_body(status={}), first_seen=False)  # status wiped by a user


def test_a_label_on_an_in_flight_resource_starts_nothing() -> None:
    c = _controller()
    c.observe(STL, "ADDED", _body())
    assert c.queue.sizes()["queued"] == 1
    c.queue._queued.clear()  # as if a worker took it and finished
    c.observe(STL, "MODIFIED", _body(status=_submitting()))  # our own intent write
    c.observe(STL, "MODIFIED", _body(status=_submitting(), labels={"team": "a"}))
    assert c.queue.sizes() == {"queued": 0, "delayed": 0, "running": 0, "parked": 0}


def test_a_final_resource_costs_no_state_and_no_pass() -> None:
    c = _controller()
    c.observe(STL, "ADDED", _body(status=_settled()))
    assert not c.queue.is_active(KEY)
    assert KEY not in c._open and KEY not in c._bodies
    assert c.runtime.registry.condition_counts()[STL]["Ready"] == 1
    assert c.runtime.registry.resources_for(1) == set()  # claimed: nothing follows it


def test_a_wiped_status_on_a_final_resource_brings_it_back() -> None:
    c = _controller()
    c.observe(STL, "ADDED", _body(status=_settled()))
    c.observe(STL, "MODIFIED", _body(status={}))
    assert c.queue.is_active(KEY)


def test_deletion_drops_everything() -> None:
    c = _controller()
    c.observe(STL, "ADDED", _body())
    c.observe(STL, "DELETED", _body())
    assert KEY not in c._open and KEY not in c._bodies
    assert c.runtime.registry.condition_counts() == {}


async def test_a_parked_pass_that_wrote_nothing_wakes_without_a_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A resource parked on its badge is woken once per release: when its pass wrote
    nothing, the body it read is still current (or the watch brought a newer one), so
    the wake-up pass reads nothing. After a write it reads (our copy is stale)."""
    from atoma_operator import controller as module
    from atoma_operator.reconcile.run import PassOutcome

    seen: list[dict[str, Any]] = []
    outcomes = [
        PassOutcome(retry_after=30.0, writes=0, waiting_on=frozenset({"0xb"})),
        PassOutcome(retry_after=30.0, writes=1, waiting_on=frozenset({"0xb"})),
        PassOutcome(),
    ]

    async def fake_pass(ctx: Any, kube: Any, key: ObjectKey, obj: Any, **_: Any) -> PassOutcome:
        seen.append(obj)
        return outcomes.pop(0)

    class _Kube:
        gets = 0

        async def get(self, key: ObjectKey) -> dict[str, Any]:
            self.gets += 1
            return _body(labels={"read": "yes"})

    monkeypatch.setattr(module, "run_pass", fake_pass)
    c = _controller()
    kube = _Kube()
    c.runtime.kube = kube  # type: ignore[attr-defined]
    c.runtime.settings.events = "all"  # type: ignore[attr-defined]
    c.observe(STL, "ADDED", _body())
    await c._pass(KEY)
    assert KEY in c._bodies and kube.gets == 0
    c.observe(STL, "MODIFIED", _body(labels={"team": "a"}))  # a user labels it meanwhile
    await c._pass(KEY)  # woken: no read, and the labelled copy is the one used
    assert kube.gets == 0 and seen[1]["metadata"]["labels"] == {"team": "a"}
    assert KEY not in c._bodies, "it wrote: its copy is stale, nothing stashed"
    await c._pass(KEY)
    assert kube.gets == 1 and seen[2]["metadata"]["labels"] == {"read": "yes"}


def test_a_listing_remembers_only_open_resources_and_finds_the_deleted_ones() -> None:
    """A re-list shows 100,000 final resources on a big cluster: none of them may cost a
    name in memory; an open one that the listing no longer shows was deleted meanwhile."""
    reg = StackRegistry(HoldBook())
    gone = ObjectKey(STL, "ns", "gone")
    reg.observe(STL, "ADDED", {**_body(), "metadata": {"namespace": "ns", "name": "gone"}})
    reg.begin_listing(STL, None)
    for i in range(100):
        reg.observe(STL, "ADDED", _body(status=_settled(), name=f"done-{i}"))
    reg.observe(STL, "ADDED", _body(name="still-open"))
    assert reg._listing[(STL, None)] == {ObjectKey(STL, "ns", "still-open")}
    assert reg.listed(STL, None) == [gone]
    assert reg._listing == {} and set(reg.open_resources()) == {ObjectKey(STL, "ns", "still-open")}
