"""The pass runner (`reconcile.run`): what reaches the apiserver for odd objects."""

from __future__ import annotations

from fakes import FakeGateway, make_context
from simworld import SimCluster

from atoma_operator.kube import ObjectKey
from atoma_operator.reconcile.run import run_pass

KEY = ObjectKey("StackSettlement", "ns", "bad")


def _conditions(obj: dict[str, object]) -> dict[str, dict[str, str]]:
    status = obj.get("status") or {}
    assert isinstance(status, dict)
    return {c["type"]: c for c in status.get("conditions") or []}


async def test_a_spec_pydantic_rejects_is_stalled_not_retried_forever() -> None:
    """Admission normally stops this; a CRD installed without its schema (or an older
    one) lets it through. It must end Stalled with the reason, and sign nothing."""
    gw = FakeGateway()
    badge = gw.add_badge(7)
    gw.add_coin()
    ctx = make_context(gw, badges=[badge])
    cluster = SimCluster()
    cluster.create(KEY, {"stackSmallIds": [1, 1], "numClaimedComputeUnits": -5, "proofs": []})
    outcome = await run_pass(ctx, cluster, KEY, await cluster.get(KEY))
    conds = _conditions(await cluster.get(KEY))
    assert conds["Stalled"]["status"] == "True"
    assert conds["Stalled"]["reason"] == "InvalidSpec"
    assert conds["Ready"]["status"] == "False"
    assert outcome.retry_after is None
    assert gw.calls["build_and_sign"] == 0 and gw.sent == []
    again = await run_pass(ctx, cluster, KEY, await cluster.get(KEY))
    assert again.writes == 0, "a second pass over the same invalid spec must not write"


async def test_a_status_edited_into_an_invalid_shape_is_stalled() -> None:
    gw = FakeGateway()
    badge = gw.add_badge(7)
    ctx = make_context(gw, badges=[badge])
    cluster = SimCluster()
    spec = {
        "stackSmallIds": [1],
        "numClaimedComputeUnits": 5,
        "proofs": [{"stackSmallId": 1, "totalHash": "0x" + "ab" * 32}],
    }
    cluster.create(KEY, spec)
    obj = await cluster.get(KEY)
    await cluster.patch_status(
        KEY, {"stacks": [{"stackSmallId": "x"}]}, obj["metadata"]["resourceVersion"]
    )
    await run_pass(ctx, cluster, KEY, await cluster.get(KEY))
    conds = _conditions(await cluster.get(KEY))
    assert conds["Stalled"]["reason"] == "InvalidStatus"
    assert gw.sent == []


async def test_an_intent_whose_write_failed_is_recorded_before_it_is_ever_sent() -> None:
    """Found by the property test (I3): the hold book kept the intent of a failed write
    and the next pass re-sent it straight away, although no status had ever shown it."""
    import contextlib

    from simworld import SimChain

    from atoma_operator.reconcile.holds import HoldBook

    chain = SimChain()
    badge = chain.add_badge(7)
    chain.add_coin()
    ctx = make_context(chain, badges=[badge])
    ctx.holds = HoldBook(inputs_of=lambda _b: [badge.object_id])
    cluster = SimCluster()
    spec = {
        "stackSmallIds": [1],
        "numClaimedComputeUnits": 5,
        "nodeSmallId": 7,
        "proofs": [{"stackSmallId": 1, "totalHash": "0x" + "ab" * 32}],
    }
    cluster.create(KEY, spec)
    for _ in range(2):  # the intent write fails twice, without landing
        cluster.armed[KEY].append("fail")
        with contextlib.suppress(OSError):
            await run_pass(ctx, cluster, KEY, await cluster.get(KEY))
        assert chain.sent == [], "sent although its intent was never recorded"
    await run_pass(ctx, cluster, KEY, await cluster.get(KEY))
    [executed] = chain.transactions
    assert executed in cluster.ever_recorded
    assert (await cluster.get(KEY))["status"]["stacks"][0]["txDigest"] == executed
    assert chain.executes[executed] == 1


async def test_every_status_write_carries_observed_generation_the_intent_included() -> None:
    """Argo CD waits for status.observedGeneration: the write-ahead intent, the first
    write of a pass, already says generation 1 was observed."""
    gw = FakeGateway()
    badge = gw.add_badge(7)
    gw.add_coin()
    ctx = make_context(gw, badges=[badge])
    cluster = SimCluster()
    spec = {
        "stackSmallIds": [1, 2],
        "numClaimedComputeUnits": 5,
        "proofs": [{"stackSmallId": s, "totalHash": "0x" + "ab" * 32} for s in (1, 2)],
    }
    cluster.create(KEY, spec)
    await run_pass(ctx, cluster, KEY, await cluster.get(KEY))
    writes = [obj["status"] for event, obj in cluster.watch if event == "MODIFIED"]
    intents = [w for w in writes if any(s.get("pending") for s in w.get("stacks") or ())]
    assert intents, "expected at least one write-ahead intent write"
    assert [w.get("observedGeneration") for w in writes] == [1] * len(writes)
    assert gw.sent, "the pass submitted nothing"
    final = writes[-1]
    assert final["nodeSmallId"] == 7, "the defaulted node is in status (kubectl's NODE)"
    assert final["settled"] == "0/2", "submitted, not settled yet (kubectl's SETTLED)"


def test_events_are_aggregated_per_type_and_reason() -> None:
    from atoma_operator.reconcile.run import MAX_EVENT_MESSAGE, aggregate
    from atoma_operator.reconcile.units import Notice

    notices = [Notice("Normal", "Submitted", f"stack {i}: settled by D{i}") for i in range(200)]
    notices.append(Notice("Warning", "Failed", "stack 7: aborted"))
    out = aggregate(notices)
    assert [(n.type, n.reason) for n in out] == [("Normal", "Submitted"), ("Warning", "Failed")]
    assert out[0].message.startswith("stack 0: settled by D0; stack 1: settled by D1")
    assert len(out[0].message) <= MAX_EVENT_MESSAGE and out[0].message.endswith("(200 in all)")


async def test_a_new_resource_waiting_for_a_busy_badge_writes_nothing_until_it_waits_long() -> None:
    """Under a burst most resources wait for their badge: a status write before their
    intent would be one more apiserver write each. A young, never-written resource whose
    units are all parked writes nothing; one parked longer than PARKED_QUIET_SECONDS
    shows its status (a user must see why it is not moving)."""

    from fakes import FakeClock

    from atoma_operator.reconcile.run import PARKED_QUIET_SECONDS

    gw = FakeGateway()
    badge = gw.add_badge(7)
    gw.add_coin()
    clock = FakeClock()
    ctx = make_context(gw, badges=[badge], clock=clock)
    ctx.badge_lines[badge.object_id] = {"other-1": 1, "other-2": 1}  # the line is full
    cluster = SimCluster()
    key = ObjectKey("StackSettlement", "ns", "waits")
    spec = {
        "stackSmallIds": [1],
        "numClaimedComputeUnits": 5,
        "proofs": [{"stackSmallId": 1, "totalHash": "0x" + "ab" * 32}],
    }
    cluster.create(key, spec)
    born = clock().replace(microsecond=0)
    cluster.objects[key]["metadata"]["creationTimestamp"] = born.isoformat()
    outcome = await run_pass(ctx, cluster, key, await cluster.get(key))
    assert outcome.writes == 0 and "status" not in await cluster.get(key)
    assert outcome.waiting_on and outcome.retry_after is not None
    assert gw.sent == []
    clock.advance(PARKED_QUIET_SECONDS + 1)
    later = await run_pass(ctx, cluster, key, await cluster.get(key))
    assert later.writes == 1
    status = (await cluster.get(key))["status"]
    assert status["observedGeneration"] == 1 and status["nodeSmallId"] == 7
    assert gw.sent == []
    del ctx.badge_lines[badge.object_id]  # the badge frees: intent, then result
    clock.advance(1)
    done = await run_pass(ctx, cluster, key, await cluster.get(key))
    assert done.writes == 2 and len(gw.sent) == 1


async def test_a_parked_resource_with_a_failed_sibling_still_writes() -> None:
    """Quiet only when every unit waits: a unit that failed must show its failure."""
    from fakes import FakeValues

    gw = FakeGateway()
    badge = gw.add_badge(7)
    gw.add_coin()
    values = FakeValues({("ns", "ConfigMap", "proofs", "stack-2"): b"zz" * 32})  # not hex
    ctx = make_context(gw, badges=[badge], values=values)
    ctx.badge_lines[badge.object_id] = {"other-1": 1, "other-2": 1}
    cluster = SimCluster()
    key = ObjectKey("StackSettlement", "ns", "mixed")
    spec = {
        "stackSmallIds": [1, 2],
        "numClaimedComputeUnits": 5,
        "proofs": [
            {"stackSmallId": 1, "totalHash": "0x" + "ab" * 32},
            {
                "stackSmallId": 2,
                "valueFrom": {"configMapKeyRef": {"name": "proofs", "key": "stack-2"}},
            },
        ],
    }
    cluster.create(key, spec)
    cluster.objects[key]["metadata"]["creationTimestamp"] = ctx.clock().isoformat()
    outcome = await run_pass(ctx, cluster, key, await cluster.get(key))
    assert outcome.writes == 1
    stacks = {s["stackSmallId"]: s for s in (await cluster.get(key))["status"]["stacks"]}
    assert stacks[2]["phase"] == "Failed"
