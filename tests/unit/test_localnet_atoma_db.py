"""The stand-in's model of atoma::db: every rule and abort of the calls the operator makes."""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from atoma_operator.atoma.dbobject import parse_atoma_db
from atoma_operator.atoma.dynfield import ticket_field_object_id
from atoma_operator.atoma.events import (
    StackSettlementTicketClaimedEvent,
    StackTrySettleEvent,
    parse_event,
)
from atoma_operator.atoma.hashing import ProofScheme, committed_proof, leaf_for_slot
from atoma_operator.atoma.ticket import parse_ticket, parse_ticket_field
from atoma_operator.sui.types import ChainEvent
from sui_localnet.atoma_db import (
    AtomaDbModel,
    CallResult,
    InvalidBadgeInput,
    MoveAbort,
    MoveArithmeticError,
)

PKG = "0x" + "a1" * 32
DB = "0x" + "d2" * 32
ALICE = "0x" + "01" * 32  # operator wallet
BOB = "0x" + "02" * 32
USER = "0x" + "03" * 32
ROOT = hashlib.blake2b(b"root", digest_size=32).digest()
EBASE = 312_012_000


def h(b: bytes) -> bytes:
    return hashlib.blake2b(b, digest_size=32).digest()


class World:
    def __init__(self, *, probability: float = 1.0, extra: int = 1, nodes: int = 2, seed: int = 7):
        self.m = AtomaDbModel(
            package_id=PKG,
            db_object_id=DB,
            rng=random.Random(seed),
            sampling_probability=probability,
            extra_nodes_count=extra,
        )
        self.m.set_epoch(10)
        self.badges = [self.m.create_node_badge(ALICE if i == 0 else BOB) for i in range(nodes)]

    def stack(self, level: int = 2, units: int = 1000, price: int = 1_000_000) -> int:
        return self.m.create_stack(
            owner=USER,
            selected_node_id=self.badges[0].node_small_id,
            num_compute_units=units,
            price_per_one_million=price,
            security_level=level,
        )

    def settle(
        self,
        stack: int,
        *,
        scheme: ProofScheme = ProofScheme.CONTRACT,
        units: int = 400,
        badge: int = 0,
        sender: str = ALICE,
    ) -> CallResult:
        return self.m.try_settle_stack(
            sender=sender,
            badge_id=self.badges[badge].object_id,
            stack_small_id=stack,
            num_claimed_compute_units=units,
            committed_stack_proof=committed_proof(ROOT, scheme, self.m.extra_nodes_count),
            stack_merkle_leaf=leaf_for_slot(ROOT, 0),
        )

    def attest(
        self,
        stack: int,
        node_badge: int,
        *,
        slot: int | None = None,
        scheme: ProofScheme = ProofScheme.CONTRACT,
        proof: bytes | None = None,
        epoch: int | None = None,
    ) -> CallResult:
        b = self.badges[node_badge]
        t = self.m.ticket(stack)
        assert t is not None
        k = slot if slot is not None else t.requested_attestation_nodes.index(b.node_small_id) + 1
        return self.m.submit_stack_settlement_attestation(
            sender=b.owner,
            badge_id=b.object_id,
            stack_small_id=stack,
            committed_stack_proof=proof or committed_proof(ROOT, scheme, self.m.extra_nodes_count),
            stack_merkle_leaf=leaf_for_slot(ROOT, k),
            epoch=epoch,
        )

    def claim(self, ids: list[int], *, badge: int = 0, epoch: int | None = None) -> CallResult:
        b = self.badges[badge]
        return self.m.claim_funds(
            sender=b.owner, badge_id=b.object_id, settled_ticket_ids=ids, epoch=epoch
        )


def abort_code(exc: pytest.ExceptionInfo[MoveAbort]) -> int:
    return exc.value.code


def chain_event(e: object, seq: int = 0) -> ChainEvent:
    from sui_localnet.atoma_db import EmittedEvent

    assert isinstance(e, EmittedEvent)
    return ChainEvent(e.event_type, e.fields, "TX", seq)


# ---------------------------------------------------------------- badges


def test_badges_are_sequential_and_owned() -> None:
    w = World(nodes=3)
    assert [b.node_small_id for b in w.badges] == [1, 2, 3]
    assert w.m.check_badge(ALICE, w.badges[0].object_id) == 1
    with pytest.raises(InvalidBadgeInput, match="not owned"):
        w.m.check_badge(BOB, w.badges[0].object_id)
    with pytest.raises(InvalidBadgeInput, match="not a NodeBadge"):
        w.m.check_badge(ALICE, "0x" + "ee" * 32)
    assert [b.node_small_id for b in w.m.badges_owned_by(BOB)] == [2, 3]


# ---------------------------------------------------------------- try_settle_stack


def test_try_settle_creates_ticket_and_event() -> None:
    w = World(probability=0.0)
    s = w.stack()
    result = w.settle(s)
    (event,) = result.events
    assert event.name == "StackTrySettleEvent"
    assert event.event_type == f"{PKG}::db::StackTrySettleEvent"
    assert event.fields["num_claimed_compute_units"] == "400"
    assert event.fields["stack_small_id"] == {"inner": str(s)}
    assert event.fields["requested_attestation_nodes"] == []
    parsed = parse_event(chain_event(event))
    assert isinstance(parsed, StackTrySettleEvent)
    assert parsed.stack_merkle_leaf == leaf_for_slot(ROOT, 0)
    ticket = parse_ticket(w.m.ticket_json(s) or {})
    assert ticket.dispute_settled_at_epoch == 11  # epoch + 1
    assert ticket.stack_merkle_leaves == leaf_for_slot(ROOT, 0) + bytes(32)
    assert ticket.already_attested_nodes == [] and not ticket.is_in_dispute
    assert ticket.object_id in result.created
    assert w.m.ticket_field_id(s) in result.created


def test_event_bcs_layout() -> None:
    w = World(probability=0.0)
    (event,) = w.settle(w.stack()).events
    proof = committed_proof(ROOT, ProofScheme.CONTRACT, 1)
    expected = (
        (1).to_bytes(8, "little")
        + (1).to_bytes(8, "little")
        + b"\x00"
        + b"\x20"
        + proof
        + b"\x20"
        + leaf_for_slot(ROOT, 0)
        + (400).to_bytes(8, "little")
    )
    assert event.bcs == expected


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("wrong_node", EBASE + 23),
        ("too_many_units", EBASE + 25),
        ("bad_proof", EBASE + 41),
        ("bad_leaf", EBASE + 42),
    ],
)
def test_try_settle_aborts(case: str, code: int) -> None:
    w = World()
    s = w.stack(units=1000)
    proof, leaf = bytes(32), bytes(32)
    badge, units = w.badges[0], 1000
    if case == "wrong_node":
        badge = w.badges[1]
    elif case == "too_many_units":
        units = 1001
    elif case == "bad_proof":
        proof = bytes(31)
    else:
        leaf = bytes(33)
    before = w.m.snapshot()
    with pytest.raises(MoveAbort) as err:
        w.m.try_settle_stack(
            sender=badge.owner,
            badge_id=badge.object_id,
            stack_small_id=s,
            num_claimed_compute_units=units,
            committed_stack_proof=proof,
            stack_merkle_leaf=leaf,
        )
    assert abort_code(err) == code
    assert err.value.module == f"{PKG}::db" and err.value.function == "try_settle_stack"
    assert w.m.snapshot() == before  # nothing changed, rng untouched


def test_try_settle_check_order_node_before_units() -> None:
    w = World()
    s = w.stack(units=10)
    with pytest.raises(MoveAbort) as err:
        w.settle(s, badge=1, sender=BOB, units=11)
    assert abort_code(err) == EBASE + 23


def test_second_settlement_aborts_ticket_exists() -> None:
    w = World()
    s = w.stack()
    w.settle(s)
    with pytest.raises(MoveAbort) as err:
        w.settle(s)
    assert abort_code(err) == EBASE + 24


def test_missing_stack_aborts_in_dynamic_field() -> None:
    w = World()
    with pytest.raises(MoveAbort) as err:
        w.settle(99)
    assert (err.value.code, err.value.module) == (1, "0x2::dynamic_field")


# ---------------------------------------------------------------- sampling


def test_sampling_forced_picks_extra_count_nodes() -> None:
    w = World(probability=1.0, extra=1, nodes=3)
    s = w.stack()
    w.settle(s)
    t = w.m.ticket(s)
    assert t is not None and len(t.requested_attestation_nodes) == 1
    assert t.requested_attestation_nodes[0] in (1, 2, 3)  # the selected node is not excluded


def test_no_sampling_below_sampling_consensus_or_at_zero_probability() -> None:
    w = World(probability=1.0)
    s0 = w.stack(level=0)
    s1 = w.stack(level=1)
    w.settle(s0)
    w.settle(s1)
    assert w.m.ticket(s0).requested_attestation_nodes == ()  # type: ignore[union-attr]
    assert w.m.ticket(s1).requested_attestation_nodes == ()  # type: ignore[union-attr]
    z = World(probability=0.0)
    s = z.stack()
    z.settle(s)
    assert z.m.ticket(s).requested_attestation_nodes == ()  # type: ignore[union-attr]


def test_sampling_probability_is_a_permille_draw() -> None:
    w = World(probability=0.5, nodes=2, seed=1)
    sampled = 0
    for _ in range(400):
        s = w.stack()
        w.settle(s)
        sampled += bool(w.m.ticket(s).requested_attestation_nodes)  # type: ignore[union-attr]
    assert 140 < sampled < 260


def test_sampling_is_with_replacement() -> None:
    seen_duplicate = False
    for seed in range(64):
        w = World(probability=1.0, extra=2, nodes=2, seed=seed)
        s = w.stack()
        w.settle(s)
        nodes = w.m.ticket(s).requested_attestation_nodes  # type: ignore[union-attr]
        assert len(nodes) == 2
        seen_duplicate |= nodes[0] == nodes[1]
    assert seen_duplicate


def test_fewer_eligible_nodes_than_count_returns_all_eligible() -> None:
    w = World(probability=1.0, extra=3, nodes=3)
    w.m.disable_node(2)
    s = w.stack()
    w.settle(s)
    t = w.m.ticket(s)
    assert t is not None and t.requested_attestation_nodes == (1, 3)
    assert len(t.stack_merkle_leaves_vector) == 4 * 32  # sized by the count, not the sample


def test_sampling_is_deterministic_per_seed() -> None:
    def run(seed: int) -> list[tuple[int, ...]]:
        w = World(probability=0.5, extra=2, nodes=4, seed=seed)
        out = []
        for _ in range(20):
            s = w.stack()
            w.settle(s)
            out.append(w.m.ticket(s).requested_attestation_nodes)  # type: ignore[union-attr]
        return out

    assert run(3) == run(3)
    assert run(3) != run(4)


# ---------------------------------------------------------------- attestations


def sampled_world(extra: int = 1, nodes: int = 2, seed: int = 7) -> tuple[World, int]:
    w = World(probability=1.0, extra=extra, nodes=nodes, seed=seed)
    s = w.stack()
    w.settle(s)
    return w, s


def badge_index(w: World, node_id: int) -> int:
    return next(i for i, b in enumerate(w.badges) if b.node_small_id == node_id)


def test_attestation_completes_and_contract_check_passes() -> None:
    w, s = sampled_world()
    (node,) = w.m.ticket(s).requested_attestation_nodes  # type: ignore[union-attr]
    w.m.set_epoch(11)
    result = w.attest(s, badge_index(w, node))
    assert [e.name for e in result.events] == [
        "NewStackSettlementAttestationEvent",
        "StackSettlementTicketEvent",
    ]
    final = result.events[1].fields
    assert final["dispute_settled_at_epoch"] == "11"  # the contract emits the current epoch
    assert final["requested_attestation_nodes"] == [{"inner": str(node)}]
    t = parse_ticket(w.m.ticket_json(s) or {})
    assert t.leaf_at(1) == leaf_for_slot(ROOT, 1)  # written at (k+1)*32
    assert t.already_attested_nodes == [node] and not t.is_in_dispute


def test_node_software_scheme_ends_in_dispute_when_sampled() -> None:
    w = World(probability=1.0)
    s = w.stack()
    w.settle(s, scheme=ProofScheme.NODE_SOFTWARE)
    (node,) = w.m.ticket(s).requested_attestation_nodes  # type: ignore[union-attr]
    result = w.attest(s, badge_index(w, node), scheme=ProofScheme.NODE_SOFTWARE)
    assert [e.name for e in result.events] == ["StackAttestationDisputeEvent"]
    t = w.m.ticket(s)
    assert t is not None and t.is_in_dispute
    assert t.already_attested_nodes == (node,)  # the contract keeps the write


def test_differing_proof_starts_dispute_without_writing() -> None:
    w, s = sampled_world()
    (node,) = w.m.ticket(s).requested_attestation_nodes  # type: ignore[union-attr]
    result = w.attest(s, badge_index(w, node), proof=h(b"other"))
    (event,) = result.events
    assert event.name == "StackAttestationDisputeEvent"
    assert event.fields["attestation_node_id"] == {"inner": str(node)}
    assert event.fields["original_node_id"] == {"inner": "1"}
    t = w.m.ticket(s)
    assert t is not None and t.is_in_dispute and t.already_attested_nodes == ()
    assert t.stack_merkle_leaves_vector[32:] == bytes(32)
    with pytest.raises(MoveAbort) as err:  # a second disagreement hits the dispute guard
        w.attest(s, badge_index(w, node), proof=h(b"other"))
    assert (abort_code(err), err.value.function) == (EBASE + 46, "start_attestation_dispute")


def test_duplicate_attestation_is_not_rejected() -> None:
    # two requested slots; whoever holds slot 1 attests twice: counted twice, slot 2 stays
    # zero, the final check fails -> dispute. The operator must check already_attested_nodes.
    for seed in range(64):
        w, s = sampled_world(extra=2, nodes=2, seed=seed)
        nodes = w.m.ticket(s).requested_attestation_nodes  # type: ignore[union-attr]
        if nodes[0] != nodes[1]:
            break
    else:
        pytest.fail("no seed sampled two distinct nodes")
    first = badge_index(w, nodes[0])
    r1 = w.attest(s, first)
    assert [e.name for e in r1.events] == ["NewStackSettlementAttestationEvent"]
    r2 = w.attest(s, first)
    assert [e.name for e in r2.events] == ["StackAttestationDisputeEvent"]
    t = w.m.ticket(s)
    assert t is not None and t.already_attested_nodes == (nodes[0], nodes[0])
    assert t.stack_merkle_leaves_vector[64:] == bytes(32)


def test_node_sampled_twice_writes_its_first_slot_only() -> None:
    for seed in range(64):
        w, s = sampled_world(extra=2, nodes=2, seed=seed)
        nodes = w.m.ticket(s).requested_attestation_nodes  # type: ignore[union-attr]
        if nodes[0] == nodes[1]:
            break
    else:
        pytest.fail("no seed sampled a node twice")
    b = badge_index(w, nodes[0])
    w.attest(s, b, slot=1)
    result = w.attest(s, b, slot=1)  # needs two submissions to reach the count
    # slot 2 was never written, so H(all slots) != the Contract-scheme proof: dispute
    assert [e.name for e in result.events] == ["StackAttestationDisputeEvent"]
    t = w.m.ticket(s)
    assert t is not None and t.stack_merkle_leaves_vector[32:64] == leaf_for_slot(ROOT, 1)
    assert t.stack_merkle_leaves_vector[64:] == bytes(32)


def test_two_distinct_attesters_complete_with_contract_scheme() -> None:
    for seed in range(64):
        w, s = sampled_world(extra=2, nodes=3, seed=seed)
        nodes = w.m.ticket(s).requested_attestation_nodes  # type: ignore[union-attr]
        if nodes[0] != nodes[1]:
            break
    r1 = w.attest(s, badge_index(w, nodes[1]))
    assert [e.name for e in r1.events] == ["NewStackSettlementAttestationEvent"]
    r2 = w.attest(s, badge_index(w, nodes[0]))
    assert [e.name for e in r2.events][-1] == "StackSettlementTicketEvent"


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("no_stack", EBASE + 27),
        ("no_ticket", EBASE + 28),
        ("bad_proof", EBASE + 41),
        ("bad_leaf", EBASE + 42),
        ("not_sampling", EBASE + 26),
        ("period_over", EBASE + 29),
        ("not_requested", EBASE + 30),
    ],
)
def test_attestation_aborts(case: str, code: int) -> None:
    w = World(probability=1.0, nodes=3, seed=7)
    s = w.stack(level=0 if case == "not_sampling" else 2)
    unsettled = w.stack()
    w.settle(s)
    t = w.m.ticket(s)
    assert t is not None
    requested = set(t.requested_attestation_nodes)
    other = next((b for b in w.badges if b.node_small_id not in requested), w.badges[0])
    badge = (
        other
        if case in ("not_requested", "not_sampling")
        else next(b for b in w.badges if b.node_small_id in requested)
    )
    stack = {"no_stack": 999, "no_ticket": unsettled}.get(case, s)
    proof, leaf = committed_proof(ROOT, ProofScheme.CONTRACT, 1), leaf_for_slot(ROOT, 1)
    if case == "bad_proof":
        proof = proof[:16]
    if case == "bad_leaf":
        leaf = leaf + b"\x00"
    epoch = 12 if case == "period_over" else 11
    before = w.m.snapshot()
    with pytest.raises(MoveAbort) as err:
        w.m.submit_stack_settlement_attestation(
            sender=badge.owner,
            badge_id=badge.object_id,
            stack_small_id=stack,
            committed_stack_proof=proof,
            stack_merkle_leaf=leaf,
            epoch=epoch,
        )
    assert abort_code(err) == code
    assert w.m.snapshot() == before


def test_final_check_dispute_on_already_disputed_ticket_reverts_everything() -> None:
    for seed in range(64):
        w, s = sampled_world(extra=2, nodes=3, seed=seed)
        nodes = w.m.ticket(s).requested_attestation_nodes  # type: ignore[union-attr]
        if nodes[0] != nodes[1]:
            break
    outsider = w.badges[0]
    w.m.start_attestation_dispute(
        sender=outsider.owner,
        badge_id=outsider.object_id,
        stack_small_id=s,
        attestation_commitment=h(b"x"),
    )
    w.attest(s, badge_index(w, nodes[0]))  # agreeing attestations still count after a dispute
    before = w.m.snapshot()
    with pytest.raises(MoveAbort) as err:
        w.attest(s, badge_index(w, nodes[1]), proof=None, slot=1)  # wrong leaf -> check fails
    assert abort_code(err) == EBASE + 46
    assert w.m.snapshot() == before


# ---------------------------------------------------------------- start_attestation_dispute


def test_start_attestation_dispute_rules() -> None:
    w = World(probability=0.0)
    s2, s0 = w.stack(level=2), w.stack(level=0)
    b = w.badges[1]
    with pytest.raises(MoveAbort) as err:
        w.m.start_attestation_dispute(
            sender=BOB, badge_id=b.object_id, stack_small_id=s2, attestation_commitment=b""
        )
    assert (err.value.code, err.value.module) == (1, "0x2::dynamic_field")
    w.settle(s2)
    w.settle(s0)
    with pytest.raises(MoveAbort) as err:
        w.m.start_attestation_dispute(
            sender=BOB, badge_id=b.object_id, stack_small_id=s0, attestation_commitment=b""
        )
    assert abort_code(err) == EBASE + 47
    result = w.m.start_attestation_dispute(
        sender=BOB, badge_id=b.object_id, stack_small_id=s2, attestation_commitment=b"\x01"
    )
    assert result.events[0].fields["attestation_commitment"] == "AQ=="
    assert w.m.ticket(s2).is_in_dispute  # type: ignore[union-attr]
    with pytest.raises(MoveAbort) as err:
        w.m.start_attestation_dispute(
            sender=BOB, badge_id=b.object_id, stack_small_id=s2, attestation_commitment=b""
        )
    assert abort_code(err) == EBASE + 46


# ---------------------------------------------------------------- claim_funds


def test_claim_pays_refunds_and_removes_ticket_and_stack() -> None:
    w = World(probability=0.0)
    s = w.stack(level=0, units=1000, price=2_000_000)  # 2 per unit
    w.settle(s, units=400)
    treasury = w.m.fee_treasury
    result = w.claim([s], epoch=11)
    (event,) = result.events
    parsed = parse_event(chain_event(event))
    assert isinstance(parsed, StackSettlementTicketClaimedEvent)
    assert parsed.user_refund_amount == 600 * 2
    assert parsed.num_claimed_compute_units == 400
    assert w.m.paid_out(USER) == 1200 and w.m.paid_out(ALICE) == 800
    assert w.m.fee_treasury == treasury - 2000
    assert w.m.ticket(s) is None and w.m.stack(s) is None
    assert w.m.ticket_json(s) is None
    with pytest.raises(MoveAbort) as err:  # claimed twice: the ticket is gone
        w.claim([s], epoch=11)
    assert (err.value.code, err.value.module) == (1, "0x2::dynamic_field")


def test_claim_sampling_consensus_fees_and_attester_rewards() -> None:
    w, s = sampled_world(nodes=2)
    (node,) = w.m.ticket(s).requested_attestation_nodes  # type: ignore[union-attr]
    w.attest(s, badge_index(w, node))
    w.claim([s], epoch=11)
    node_fee = 400 * 1_000_000 * 1200 // (1_000_000 * 1000)
    refund = 600 * 1_000_000 * 1200 // (1_000_000 * 1000)
    assert w.m.paid_out(USER) == refund
    if node == 1:  # the selected node attested its own stack: paid at once
        assert w.m.paid_out(ALICE) == node_fee * 2
    else:
        assert w.m.paid_out(ALICE) == node_fee
        assert w.m.node_available_fees(node) == node_fee


def test_claim_slashes_missing_attesters_without_waiting_for_them() -> None:
    w, s = sampled_world(nodes=2)
    (node,) = w.m.ticket(s).requested_attestation_nodes  # type: ignore[union-attr]
    w.claim([s], epoch=11)
    assert w.m.node_timeouts(node) == 1


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("wrong_node", EBASE + 33),
        ("in_dispute", EBASE + 31),
        ("too_early", EBASE + 32),
        ("already_claimed", EBASE + 53),
    ],
)
def test_claim_aborts(case: str, code: int) -> None:
    w = World(probability=0.0)
    s = w.stack()
    w.settle(s)
    if case == "in_dispute":
        w.m.start_attestation_dispute(
            sender=BOB, badge_id=w.badges[1].object_id, stack_small_id=s, attestation_commitment=b""
        )
    if case == "already_claimed":
        w.m.mark_stack_claimed(s)
    before = w.m.snapshot()
    with pytest.raises(MoveAbort) as err:
        w.claim(
            [s], badge=1 if case == "wrong_node" else 0, epoch=10 if case == "too_early" else 11
        )
    assert abort_code(err) == code
    assert err.value.function == "fetch_stack_settlement_ticket_data"
    assert w.m.snapshot() == before


def test_claim_is_atomic_over_the_vector() -> None:
    w = World(probability=0.0)
    a, b = w.stack(), w.stack()
    w.settle(a)
    w.settle(b)
    before = w.m.snapshot()
    with pytest.raises(MoveAbort):
        w.claim([a, b, a], epoch=11)  # the repeated id fails after a and b were processed
    assert w.m.snapshot() == before
    result = w.claim([a, b], epoch=11)
    assert [e.fields["stack_small_id"]["inner"] for e in result.events] == [str(a), str(b)]
    assert len(result.deleted) == 6


def test_fee_overflow_is_an_arithmetic_failure() -> None:
    w = World(probability=0.0)
    s = w.stack(level=0, units=2**40, price=2**40)
    w.settle(s, units=2**40)
    with pytest.raises(MoveArithmeticError):
        w.claim([s], epoch=11)


# ---------------------------------------------------------------- objects as served


def test_objects_served_match_the_operator_parsers_and_derivation() -> None:
    w, s = sampled_world()
    db = w.m.get_object(DB)
    assert db is not None and db.owner.kind == "shared"
    info = parse_atoma_db(db.json)
    assert info.tickets_table_id == w.m.tickets_table_id
    assert info.cross_validation_extra_nodes_count == 1
    field_id = ticket_field_object_id(info.tickets_table_id, PKG, s)
    assert field_id == w.m.ticket_field_id(s)
    field_obj = w.m.get_object(field_id)
    assert field_obj is not None and field_obj.owner.address == info.tickets_table_id
    stack, ticket_id = parse_ticket_field(field_obj.json)
    assert stack == s
    ticket_obj = w.m.get_object(ticket_id)
    assert ticket_obj is not None and ticket_obj.type == f"{PKG}::db::StackSettlementTicket"
    assert ticket_obj.owner == type(ticket_obj.owner)("object", field_id)
    assert parse_ticket(ticket_obj.json).stack_small_id == s
    # BCS: id(32) + 3 u64 + vec(1 node) + u64 + vec32 + vec64 + empty vec + bool
    assert len(ticket_obj.bcs) == 32 + 24 + (1 + 8) + 8 + 33 + 65 + 1 + 1
    badge = w.m.get_object(w.badges[0].object_id)
    assert badge is not None and badge.owner.address == ALICE
    assert badge.json["small_id"] == {"inner": "1"}
    assert w.m.get_object("0x" + "99" * 32) is None


# ---------------------------------------------------------------- snapshot


def test_snapshot_restore_continues_identically() -> None:
    w = World(probability=0.5, extra=2, nodes=4, seed=11)
    for _ in range(5):
        w.settle(w.stack())
    data = json.loads(json.dumps(w.m.snapshot()))
    twin = AtomaDbModel.restore(data)
    assert twin.snapshot() == w.m.snapshot()
    outcomes = []
    for model in (w.m, twin):
        seq = []
        for _ in range(10):
            s = model.create_stack(
                owner=USER,
                selected_node_id=1,
                num_compute_units=10,
                price_per_one_million=1,
                security_level=2,
            )
            model.try_settle_stack(
                sender=ALICE,
                badge_id=w.badges[0].object_id,
                stack_small_id=s,
                num_claimed_compute_units=1,
                committed_stack_proof=bytes(32),
                stack_merkle_leaf=bytes(32),
            )
            t = model.ticket(s)
            assert t is not None
            seq.append((t.object_id, t.requested_attestation_nodes))
        outcomes.append(seq)
    assert outcomes[0] == outcomes[1]
    assert twin.get_object(twin.ticket_field_id(1)) is not None  # index rebuilt


def test_invalid_configuration() -> None:
    with pytest.raises(ValueError):
        AtomaDbModel(
            package_id=PKG, db_object_id=DB, rng=random.Random(0), sampling_probability=1.5
        )
    w = World()
    with pytest.raises(ValueError):
        w.m.set_epoch(3)
    with pytest.raises(ValueError):
        w.m.create_stack(
            owner=USER,
            selected_node_id=42,
            num_compute_units=1,
            price_per_one_million=1,
            security_level=2,
        )
