"""The Attestation state machine (`reconcile.attestation`) against the in-memory chain."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fakes import (
    FakeClock,
    FakeGateway,
    FakeValues,
    StatusLog,
    Succeed,
    abort,
    dispute_event,
    make_context,
    make_ticket,
)

from atoma_operator.atoma.calls import SUBMIT_ATTESTATION
from atoma_operator.atoma.hashing import ProofScheme, attestation_commitment, parse_total_hash
from atoma_operator.reconcile.attestation import (
    SUBMIT_FAILED,
    AttestationPass,
    conclude,
    reconcile_attestation,
)
from atoma_operator.reconcile.conditions import condition_status
from atoma_operator.resources.attestation import (
    AttestationEntryStatus,
    AttestationPhase,
    AttestationSpec,
    AttestationStatus,
)
from atoma_operator.resources.proofs import KeySelector, ProofValueSource, StackProof
from atoma_operator.sui.types import PureArg

NS = "team-b"
TOTAL_HASH = "11" * 32 + "22" * 32 + "33" * 32


def spec_for(stacks: list[int], *, node: int | None = None) -> AttestationSpec:
    return AttestationSpec(
        stack_small_ids=stacks,
        node_small_id=node,
        proofs=[StackProof(stack_small_id=s, total_hash=TOTAL_HASH) for s in stacks],
    )


class World:
    def __init__(self, *, badges: tuple[int, ...] = (5, 9), epoch: int = 10) -> None:
        self.gw = FakeGateway(epoch=epoch)
        self.gw.add_coin()
        self.gw.add_coin()
        self.badges = [self.gw.add_badge(n) for n in badges]
        self.clock = FakeClock()
        self.values = FakeValues()
        self.ctx = make_context(self.gw, badges=self.badges, clock=self.clock, values=self.values)
        self.status = AttestationStatus()
        self.log = StatusLog(self.gw)

    async def run(self, spec: AttestationSpec, generation: int = 1) -> AttestationPass:
        result = await asyncio.wait_for(
            reconcile_attestation(
                namespace=NS,
                name="a",
                generation=generation,
                spec=spec,
                status=self.status,
                ctx=self.ctx,
                write_status=self.log,
            ),
            2.0,
        )
        conclude(result.status, result.problems, generation)
        return result

    def entry(self, sid: int, node: int) -> AttestationEntryStatus:
        entry = self.status.entry(sid, node)
        assert entry is not None, f"no entry for stack {sid} node {node}"
        return entry

    def conditions(self) -> list[dict[str, Any]]:
        return [c.to_k8s() for c in self.status.conditions]

    def stalled(self) -> tuple[str | None, str | None]:
        cond = next((c for c in self.conditions() if c["type"] == "Stalled"), None)
        return (cond or {}).get("status"), (cond or {}).get("reason")


async def test_slot_is_first_position_plus_one_and_the_leaf_is_for_that_slot() -> None:
    w = World()
    ticket = make_ticket(1, requested=[7, 5, 5], slots=4)
    w.gw.set_ticket(ticket)
    await w.run(spec_for([1], node=5))
    entry = w.entry(1, 5)
    assert entry.slot == 2
    assert entry.phase is AttestationPhase.ATTESTED
    [call] = w.gw.built
    leaf = call.arguments[4]
    assert isinstance(leaf, PureArg)
    _, expected = attestation_commitment(
        parse_total_hash(TOTAL_HASH), ProofScheme.CONTRACT, 2, ticket.num_slots - 1
    )
    assert leaf.value == expected
    assert w.status.tx_digests == [entry.tx_digest]
    assert w.stalled() == ("False", "NotStalled")
    assert condition_status(w.conditions(), "Ready") == "True"


async def test_already_attested_sends_nothing() -> None:
    w = World()
    w.gw.set_ticket(make_ticket(1, requested=[5], attested=[5]))
    result = await w.run(spec_for([1], node=5))
    assert w.entry(1, 5).phase is AttestationPhase.ATTESTED
    assert w.gw.calls["build_and_sign"] == 0 and w.gw.calls["execute"] == 0
    assert w.entry(1, 5).tx_digest is None
    assert any(n.reason == "AlreadyAttested" for n in result.notices)


async def test_dispute_window_over_fails_with_the_seed_wording() -> None:
    w = World(epoch=13)
    w.gw.set_ticket(make_ticket(1, requested=[5], dispute_settled_at_epoch=12))
    result = await w.run(spec_for([1], node=5))
    entry = w.entry(1, 5)
    assert entry.phase is AttestationPhase.FAILED
    assert (entry.last_error or "").startswith(SUBMIT_FAILED)
    assert SUBMIT_FAILED == "Failed to submit node attestation proof tx"
    assert "epoch 12 (now 13)" in (entry.last_error or "")
    assert w.gw.calls["build_and_sign"] == 0
    assert result.retry_after is None
    assert entry.reason == "DisputePeriodOver"
    assert w.stalled() == ("True", "DisputePeriodOver")


async def test_last_epoch_of_the_window_is_still_open() -> None:
    w = World(epoch=12)
    w.gw.set_ticket(make_ticket(1, requested=[5], dispute_settled_at_epoch=12))
    await w.run(spec_for([1], node=5))
    assert w.entry(1, 5).phase is AttestationPhase.ATTESTED


async def test_node_not_held_is_an_unknown_node_problem() -> None:
    w = World()
    w.gw.set_ticket(make_ticket(1, requested=[4]))
    result = await w.run(spec_for([1], node=4))
    [problem] = result.problems
    assert (problem.reason, problem.terminal) == ("UnknownNode", True)
    assert problem.message.startswith(SUBMIT_FAILED)
    assert w.status.attestations == []
    assert w.gw.calls["build_and_sign"] == 0
    assert w.stalled() == ("True", "UnknownNode")
    assert result.retry_after is None


async def test_node_held_but_not_requested_is_terminal() -> None:
    w = World()
    w.gw.set_ticket(make_ticket(1, requested=[7]))
    result = await w.run(spec_for([1], node=5))
    assert [(p.reason, p.terminal) for p in result.problems] == [("NodeNotRequested", True)]
    assert w.gw.calls["build_and_sign"] == 0


async def test_no_ticket_yet_waits_and_is_not_terminal() -> None:
    w = World()
    result = await w.run(spec_for([1], node=5))
    [problem] = result.problems
    assert (problem.reason, problem.terminal) == ("WaitingForTicket", False)
    assert result.retry_after == w.ctx.settings.retry_base_seconds
    assert w.gw.calls["build_and_sign"] == 0
    conds = w.conditions()
    assert condition_status(conds, "Reconciling") == "True"
    assert w.stalled()[0] == "False"
    # The ticket appears: the next pass attests.
    w.gw.set_ticket(make_ticket(1, requested=[5]))
    again = await w.run(spec_for([1], node=5))
    assert again.problems == []
    assert w.entry(1, 5).phase is AttestationPhase.ATTESTED


async def test_without_node_every_requested_held_badge_attests() -> None:
    w = World(badges=(5, 9, 11))
    w.gw.set_ticket(make_ticket(1, requested=[9, 7, 5, 5], slots=5))
    w.gw.set_ticket(make_ticket(2, requested=[5]))
    await w.run(spec_for([2, 1]))
    pairs = [(a.stack_small_id, a.node_small_id, a.slot) for a in w.status.attestations]
    assert pairs == [(2, 5, 1), (1, 9, 1), (1, 5, 3)]  # stack order, then slot; 7 and 11 absent
    assert all(a.phase is AttestationPhase.ATTESTED for a in w.status.attestations)
    assert w.status.tx_digests == [a.tx_digest for a in w.status.attestations]
    assert len(set(w.status.tx_digests)) == 3
    assert sorted(w.gw.tickets[1].already_attested_nodes) == [5, 9]


async def test_without_node_and_none_requested_is_terminal() -> None:
    w = World(badges=(5,))
    w.gw.set_ticket(make_ticket(1, requested=[7]))
    result = await w.run(spec_for([1]))
    assert [(p.reason, p.terminal) for p in result.problems] == [("NodeNotRequested", True)]


async def test_dispute_event_in_the_outcome_is_disputed() -> None:
    w = World()
    w.gw.set_ticket(make_ticket(1, requested=[5]))
    w.gw.script(SUBMIT_ATTESTATION, 1, execute=[Succeed(events=(dispute_event(1, 5),))])
    result = await w.run(spec_for([1], node=5))
    assert w.entry(1, 5).phase is AttestationPhase.DISPUTED
    assert w.stalled() == ("True", "Disputed")
    assert any(n.reason == "Disputed" for n in result.notices)


async def test_ticket_event_in_the_outcome_is_settled() -> None:
    w = World()
    w.gw.set_ticket(make_ticket(1, requested=[5]))
    ticket_event = (
        "StackSettlementTicketEvent",
        {
            "stack_small_id": {"inner": "1"},
            "selected_node_id": {"inner": "1"},
            "num_claimed_compute_units": "100",
            "requested_attestation_nodes": [{"inner": "5"}],
            "dispute_settled_at_epoch": "10",
            "committed_stack_proof": "AQ==",
        },
    )
    w.gw.script(SUBMIT_ATTESTATION, 1, execute=[Succeed(events=(ticket_event,))])
    await w.run(spec_for([1], node=5))
    assert w.entry(1, 5).phase is AttestationPhase.SETTLED


async def test_ticket_already_in_dispute_sends_nothing() -> None:
    w = World()
    w.gw.set_ticket(make_ticket(1, requested=[5], in_dispute=True))
    await w.run(spec_for([1], node=5))
    assert w.entry(1, 5).phase is AttestationPhase.DISPUTED
    assert w.gw.calls["build_and_sign"] == 0


async def test_terminal_abort_keeps_the_seed_prefix_and_the_abort_name() -> None:
    w = World()
    w.gw.set_ticket(make_ticket(1, requested=[5]))
    w.gw.script(SUBMIT_ATTESTATION, 1, execute=[abort("ENodeNotSelectedForAttestation")])
    await w.run(spec_for([1], node=5))
    entry = w.entry(1, 5)
    assert entry.phase is AttestationPhase.FAILED
    assert (entry.last_error or "").startswith(f"{SUBMIT_FAILED}: ")
    assert entry.reason == "ENodeNotSelectedForAttestation"
    assert w.stalled() == ("True", "ENodeNotSelectedForAttestation")
    assert len(w.gw.sent) == 1


async def test_intent_written_before_the_attestation_is_sent() -> None:
    w = World()
    w.gw.set_ticket(make_ticket(1, requested=[5]))
    await w.run(spec_for([1], node=5))
    executed_then, body = w.log.writes[0]
    assert executed_then == 0
    [entry] = body["attestations"]
    assert entry["phase"] == "Submitting" and entry["pending"]["digest"]


@pytest.mark.parametrize("retryable", ["EStackNotInSettlementDispute"])
async def test_retryable_abort_waits_before_resending(retryable: str) -> None:
    w = World()
    w.gw.set_ticket(make_ticket(1, requested=[5]))
    w.gw.script(SUBMIT_ATTESTATION, 1, simulate=[abort(retryable)])
    first = await w.run(spec_for([1], node=5))
    entry = w.entry(1, 5)
    assert entry.phase is AttestationPhase.PENDING and entry.reason == retryable
    assert first.retry_after is not None and first.retry_after > 0
    await w.run(spec_for([1], node=5))
    assert w.gw.calls["simulate"] == 1  # not due yet
    w.clock.advance(first.retry_after)
    await w.run(spec_for([1], node=5))
    assert w.entry(1, 5).phase is AttestationPhase.ATTESTED


async def test_missing_secret_proof_waits_says_not_found_or_not_permitted_then_attests() -> None:
    w = World()
    w.gw.set_ticket(make_ticket(1, requested=[5], slots=2))
    ref = KeySelector(name="proofs", key="stack-1")
    spec = AttestationSpec(
        stack_small_ids=[1],
        node_small_id=5,
        proofs=[StackProof(stack_small_id=1, value_from=ProofValueSource(secret_key_ref=ref))],
    )
    first = await w.run(spec)
    entry = w.entry(1, 5)
    assert entry.phase is AttestationPhase.PENDING and entry.reason == "WaitingForProofInput"
    assert "Secret proofs key stack-1: not found or not permitted" in (entry.last_error or "")
    reconciling = next(c for c in w.conditions() if c["type"] == "Reconciling")
    assert (reconciling["status"], reconciling["reason"]) == ("True", "WaitingForProofInput")
    assert w.stalled()[0] == "False"
    assert not w.gw.built
    assert first.retry_after is not None
    w.values.values[(NS, "Secret", "proofs", "stack-1")] = TOTAL_HASH.encode()
    w.clock.advance(first.retry_after)
    await w.run(spec)
    assert w.entry(1, 5).phase is AttestationPhase.ATTESTED


async def test_two_resources_attesting_one_stack_with_one_badge_send_one_transaction() -> None:
    """Found by the property test (I1): two Attestations for the same stack and badge,
    reconciled at once, both passed the "already attested?" check before either executed."""
    w = World(badges=(5,))
    w.gw.set_ticket(make_ticket(1, requested=[5]))
    other = AttestationStatus()

    async def second() -> AttestationPass:
        result = await reconcile_attestation(
            namespace=NS,
            name="b",
            generation=1,
            spec=spec_for([1]),
            status=other,
            ctx=w.ctx,
            write_status=w.log,
        )
        conclude(result.status, result.problems, 1)
        return result

    await asyncio.gather(w.run(spec_for([1])), second())
    assert len(w.gw.transactions) == 1, "two attestations of one (stack, node) were executed"
    phases = {w.entry(1, 5).phase, other.entry(1, 5).phase}  # type: ignore[union-attr]
    assert phases == {AttestationPhase.ATTESTED}
