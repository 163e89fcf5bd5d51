"""The Atoma `db` Move module's settlement rules as a deterministic Python state machine.

The local Sui stand-in executes Move calls against this model instead of a Move VM. It
follows `atoma::db` (atoma-contracts, sources/db.move) for the calls the operator makes:
`try_settle_stack`, `submit_stack_settlement_attestation`, `start_attestation_dispute` and
`claim_funds` — the order of their checks, their abort codes (including aborts raised by
the Sui framework for a missing table entry), sampling, slot writes, disputes and events.
Each call is all-or-nothing: checks and outcomes are computed first, state changes last,
so an abort leaves the model untouched (as a Move abort reverts a transaction).

Not modelled: tasks beyond a security level per stack (every registered, enabled node is
eligible for attestation sampling), node collateral (disabled on chain: slashing is a
no-op, counted only), and the Move VM's gas. Object ownership and versions are the
server's job; `check_badge` gives it the badge → node mapping and owner.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .atoma_render import Field, render_bcs, render_json
from .dynfield import derive_dynamic_field_id, stack_small_id_type

U64_MAX = 2**64 - 1
HASH_LEN = 32
ONE_MILLION = 1_000_000
DISPUTE_SETTLEMENT_DELAY = 1
NO_SECURITY, CONFIDENTIAL_COMPUTE, SAMPLING_CONSENSUS = 0, 1, 2

EBASE = 312_012_000
E_NODE_NOT_SELECTED_FOR_STACK = EBASE + 23
E_STACK_IN_SETTLEMENT_DISPUTE = EBASE + 24  # i.e. a ticket already exists
E_TOO_MANY_COMPUTED_UNITS = EBASE + 25
E_STACK_DOES_NOT_REQUIRE_SAMPLING_CONSENSUS = EBASE + 26
E_STACK_NOT_FOUND = EBASE + 27
E_STACK_NOT_IN_SETTLEMENT_DISPUTE = EBASE + 28  # i.e. no ticket
E_STACK_DISPUTE_PERIOD_OVER = EBASE + 29
E_NODE_NOT_SELECTED_FOR_ATTESTATION = EBASE + 30
E_STACK_IN_DISPUTE = EBASE + 31
E_STACK_DISPUTE_PERIOD_IS_NOT_OVER = EBASE + 32
E_NODE_NOT_SELECTED_FOR_SETTLEMENT = EBASE + 33
E_INVALID_COMMITTED_STACK_PROOF = EBASE + 41
E_INVALID_STACK_MERKLE_LEAF = EBASE + 42
E_STACK_ALREADY_IN_DISPUTE = EBASE + 46
E_TASK_SECURITY_LEVEL_NOT_SAMPLING_CONSENSUS = EBASE + 47
E_STACK_ALREADY_CLAIMED = EBASE + 53
# Sui framework: Table/ObjectTable borrow of a missing key; Balance split beyond its value.
DYNAMIC_FIELD_MODULE = "0x2::dynamic_field"
E_FIELD_DOES_NOT_EXIST = 1
BALANCE_MODULE = "0x2::balance"
E_NOT_ENOUGH = 2


class MoveAbort(Exception):
    """A Move abort: the transaction executes (gas is charged) but all its effects revert."""

    def __init__(self, code: int, module: str, function: str) -> None:
        super().__init__(f"MoveAbort({module}::{function}, {code})")
        self.code = code
        self.module = module  # "0x<pkg>::db" or a framework module such as "0x2::dynamic_field"
        self.function = function


class MoveArithmeticError(Exception):
    """u64 overflow or division by zero inside Move (an execution failure, not an abort)."""


class InvalidBadgeInput(Exception):
    """The badge input is not a NodeBadge owned by the sender: Sui rejects the transaction
    before execution (it never runs, no gas is charged)."""


@dataclass(frozen=True)
class Badge:
    object_id: str
    owner: str
    node_small_id: int


@dataclass(frozen=True)
class Stack:
    small_id: int
    owner: str
    selected_node_id: int
    num_compute_units: int
    price_per_one_million: int
    security_level: int
    is_claimed: bool = False


@dataclass(frozen=True)
class Ticket:
    object_id: str
    stack_small_id: int
    selected_node_id: int
    num_claimed_compute_units: int
    requested_attestation_nodes: tuple[int, ...]
    dispute_settled_at_epoch: int
    committed_stack_proof: bytes
    stack_merkle_leaves_vector: bytes
    already_attested_nodes: tuple[int, ...]
    is_in_dispute: bool


@dataclass(frozen=True)
class EmittedEvent:
    name: str  # e.g. "StackTrySettleEvent"
    event_type: str  # "0x<pkg>::db::StackTrySettleEvent"
    fields: dict[str, Any]  # RPC JSON (u64 as strings)
    bcs: bytes


@dataclass(frozen=True)
class Owner:
    kind: Literal["address", "object", "shared"]
    address: str | None = None  # the owning address or parent object; None when shared


@dataclass(frozen=True)
class ModelObject:
    """An object of the model as the server should serve it (version excluded)."""

    object_id: str
    type: str
    owner: Owner
    json: dict[str, Any]
    bcs: bytes


@dataclass(frozen=True)
class CallResult:
    """Effects of a successful call: events in emission order and object changes."""

    events: tuple[EmittedEvent, ...]
    created: tuple[str, ...] = ()
    mutated: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()


@dataclass
class _NodeAccount:
    available_fee_amount: int = 0
    timeouts: int = 0  # slash_node_on_timeout calls (collateral is 0: nothing taken)
    disabled: bool = False


@dataclass
class _State:
    epoch: int = 0
    next_node: int = 1
    next_stack: int = 1
    uid_counter: int = 0
    fee_treasury: int = 0
    badges: dict[str, Badge] = field(default_factory=dict)
    nodes: dict[int, _NodeAccount] = field(default_factory=dict)
    stacks: dict[int, Stack] = field(default_factory=dict)
    tickets: dict[int, Ticket] = field(default_factory=dict)
    paid_out: dict[str, int] = field(default_factory=dict)  # USDC sent to each address
    # object id -> stack small id, for ticket objects and their table-entry field objects
    ticket_index: dict[str, int] = field(default_factory=dict)


def _check_u64(value: int, what: str) -> None:
    if not 0 <= value <= U64_MAX:
        raise MoveArithmeticError(f"{what} overflows u64")


class AtomaDbModel:
    """One AtomaDb shared object with its tables, plus the node badges it issued."""

    def __init__(
        self,
        *,
        package_id: str,
        db_object_id: str,
        rng: random.Random,
        sampling_probability: float = 0.01,
        extra_nodes_count: int = 1,
        sampling_consensus_charge_permille: int = 1200,
        extra_nodes_charge_permille: int = 12,
    ) -> None:
        self.package_id = _norm(package_id)
        self.db_object_id = _norm(db_object_id)
        self.rng = rng
        self.probability_permille = _permille(sampling_probability)
        if extra_nodes_count < 0:
            raise ValueError("extra_nodes_count must be >= 0")
        self.extra_nodes_count = extra_nodes_count
        self.sampling_consensus_charge_permille = sampling_consensus_charge_permille
        self.extra_nodes_charge_permille = extra_nodes_charge_permille
        self._s = _State()
        self.tickets_uid = self._derive_id("tickets")
        self.nodes_table_id = self._derive_id("nodes")
        self.models_table_id = self._derive_id("models")
        self.tasks_table_id = self._derive_id("tasks")
        self.stacks_table_id = self._derive_id("stacks")
        self.tickets_table_id = self._derive_id("stack_settlement_tickets")

    # ------------------------------------------------------------------ ids and types

    def _derive_id(self, label: str) -> str:
        h = hashlib.blake2b(digest_size=32)
        h.update(bytes.fromhex(self.db_object_id[2:]))
        h.update(label.encode())
        return "0x" + h.hexdigest()

    def _new_uid(self, kind: str) -> str:
        self._s.uid_counter += 1
        return self._derive_id(f"{kind}#{self._s.uid_counter}")

    def _type(self, name: str) -> str:
        return f"{self.package_id}::db::{name}"

    @property
    def ticket_type(self) -> str:
        return self._type("StackSettlementTicket")

    @property
    def badge_type(self) -> str:
        return self._type("NodeBadge")

    @property
    def db_type(self) -> str:
        return self._type("AtomaDb")

    @property
    def ticket_field_type(self) -> str:
        key = f"0x2::dynamic_object_field::Wrapper<{stack_small_id_type(self.package_id)}>"
        return f"0x2::dynamic_field::Field<{key},0x2::object::ID>"

    def ticket_field_id(self, stack_small_id: int) -> str:
        """Object id of the ObjectTable entry (derived as Sui does; the operator derives it too)."""
        key_type = f"0x2::dynamic_object_field::Wrapper<{stack_small_id_type(self.package_id)}>"
        return derive_dynamic_field_id(
            self.tickets_table_id, key_type, stack_small_id.to_bytes(8, "little")
        )

    def stack_field_id(self, stack_small_id: int) -> str:
        """Object id of the `Table<StackSmallId, Stack>` entry (deleted by claim_funds)."""
        return derive_dynamic_field_id(
            self.stacks_table_id,
            stack_small_id_type(self.package_id),
            stack_small_id.to_bytes(8, "little"),
        )

    # ------------------------------------------------------------------ genesis helpers

    @property
    def epoch(self) -> int:
        return self._s.epoch

    def set_epoch(self, epoch: int) -> None:
        if epoch < self._s.epoch:
            raise ValueError("epochs only move forward")
        self._s.epoch = epoch

    def set_sampling(
        self, *, probability_permille: int | None = None, extra_nodes_count: int | None = None
    ) -> None:
        """The admin setters of the contract (cross-validation probability and node count)."""
        if probability_permille is not None:
            if not 0 <= probability_permille <= 1000:
                raise ValueError("probability_permille must be in 0..1000")
            self.probability_permille = probability_permille
        if extra_nodes_count is not None:
            if extra_nodes_count < 0:
                raise ValueError("extra_nodes_count must be >= 0")
            self.extra_nodes_count = extra_nodes_count

    def create_node_badge(self, owner: str) -> Badge:
        """Register a node: a new NodeBadge owned by `owner` with the next node small id."""
        node_id = self._s.next_node
        self._s.next_node += 1
        badge = Badge(self._new_uid("badge"), _norm(owner), node_id)
        self._s.badges[badge.object_id] = badge
        self._s.nodes[node_id] = _NodeAccount()
        return badge

    def disable_node(self, node_small_id: int) -> None:
        """A disabled node is no longer sampled for attestation."""
        self._s.nodes[node_small_id].disabled = True

    def create_stack(
        self,
        *,
        owner: str,
        selected_node_id: int,
        num_compute_units: int,
        price_per_one_million: int,
        security_level: int,
    ) -> int:
        """A stack as `acquire_new_stack` leaves it (the node is chosen by the caller here)."""
        if selected_node_id not in self._s.nodes:
            raise ValueError(f"node {selected_node_id} is not registered")
        if not 0 < num_compute_units <= U64_MAX or not 0 < price_per_one_million <= U64_MAX:
            raise ValueError("compute units and price must be positive u64")
        if security_level not in (NO_SECURITY, CONFIDENTIAL_COMPUTE, SAMPLING_CONSENSUS):
            raise ValueError(f"invalid security level {security_level}")
        total_cost = price_per_one_million * num_compute_units // ONE_MILLION
        if security_level == SAMPLING_CONSENSUS:
            charge = self.sampling_consensus_charge_permille + self.extra_nodes_charge_permille
            total_cost = total_cost * charge // 1000
        stack_id = self._s.next_stack
        self._s.next_stack += 1
        self._s.stacks[stack_id] = Stack(
            stack_id,
            _norm(owner),
            selected_node_id,
            num_compute_units,
            price_per_one_million,
            security_level,
        )
        self._s.fee_treasury += total_cost
        return stack_id

    def mark_stack_claimed(self, stack_small_id: int) -> None:
        """What `claim_funds_for_stacks` (ConfidentialCompute) leaves behind: is_claimed."""
        self._s.stacks[stack_small_id] = replace(self._s.stacks[stack_small_id], is_claimed=True)

    # ------------------------------------------------------------------ badges

    def check_badge(self, sender: str, badge_id: str) -> int:
        """The node small id of `badge_id` if it is a NodeBadge owned by `sender`."""
        badge = self._s.badges.get(_norm(badge_id))
        if badge is None:
            raise InvalidBadgeInput(f"object {badge_id} is not a NodeBadge")
        if badge.owner != _norm(sender):
            raise InvalidBadgeInput(f"badge {badge_id} is not owned by the sender")
        return badge.node_small_id

    def badge(self, badge_id: str) -> Badge | None:
        return self._s.badges.get(_norm(badge_id))

    def badges_owned_by(self, owner: str) -> list[Badge]:
        o = _norm(owner)
        return [b for b in self._s.badges.values() if b.owner == o]

    def transfer_badge(self, badge_id: str, new_owner: str) -> None:
        b = self._s.badges[_norm(badge_id)]
        self._s.badges[b.object_id] = replace(b, owner=_norm(new_owner))

    # ------------------------------------------------------------------ Move calls

    def _abort(self, code: int, function: str) -> MoveAbort:
        return MoveAbort(code, f"{self.package_id}::db", function)

    @staticmethod
    def _missing() -> MoveAbort:
        return MoveAbort(E_FIELD_DOES_NOT_EXIST, DYNAMIC_FIELD_MODULE, "borrow_child_object")

    def _epoch(self, epoch: int | None) -> int:
        return self._s.epoch if epoch is None else epoch

    def _sample_attestation_nodes(self, rng: random.Random) -> tuple[int, ...]:
        eligible = [n for n, acct in sorted(self._s.nodes.items()) if not acct.disabled]
        count = self.extra_nodes_count
        if len(eligible) < count:
            return tuple(eligible)  # the contract returns every eligible node, unsampled
        # with replacement, the selected node not excluded
        return tuple(eligible[rng.getrandbits(64) % len(eligible)] for _ in range(count))

    def try_settle_stack(
        self,
        *,
        sender: str,
        badge_id: str,
        stack_small_id: int,
        num_claimed_compute_units: int,
        committed_stack_proof: bytes,
        stack_merkle_leaf: bytes,
        epoch: int | None = None,
    ) -> CallResult:
        fn = "try_settle_stack"
        node_id = self.check_badge(sender, badge_id)
        stack = self._s.stacks.get(stack_small_id)
        if stack is None:
            raise self._missing()
        if node_id != stack.selected_node_id:
            raise self._abort(E_NODE_NOT_SELECTED_FOR_STACK, fn)
        if num_claimed_compute_units > stack.num_compute_units:
            raise self._abort(E_TOO_MANY_COMPUTED_UNITS, fn)
        if stack_small_id in self._s.tickets:
            raise self._abort(E_STACK_IN_SETTLEMENT_DISPUTE, fn)
        if len(committed_stack_proof) != HASH_LEN:
            raise self._abort(E_INVALID_COMMITTED_STACK_PROOF, fn)
        if len(stack_merkle_leaf) != HASH_LEN:
            raise self._abort(E_INVALID_STACK_MERKLE_LEAF, fn)
        now = self._epoch(epoch)
        _check_u64(now + DISPUTE_SETTLEMENT_DELAY, "dispute_settled_at_epoch")
        nodes: tuple[int, ...] = ()
        if stack.security_level == SAMPLING_CONSENSUS:
            draw = self.rng.getrandbits(64) % 1000 + 1
            if draw <= self.probability_permille:
                nodes = self._sample_attestation_nodes(self.rng)
        ticket = Ticket(
            object_id=self._new_uid("ticket"),
            stack_small_id=stack_small_id,
            selected_node_id=node_id,
            num_claimed_compute_units=num_claimed_compute_units,
            requested_attestation_nodes=nodes,
            dispute_settled_at_epoch=now + DISPUTE_SETTLEMENT_DELAY,
            committed_stack_proof=bytes(committed_stack_proof),
            stack_merkle_leaves_vector=bytes(stack_merkle_leaf)
            + bytes(self.extra_nodes_count * HASH_LEN),
            already_attested_nodes=(),
            is_in_dispute=False,
        )
        self._s.tickets[stack_small_id] = ticket
        self._s.ticket_index[ticket.object_id] = stack_small_id
        self._s.ticket_index[self.ticket_field_id(stack_small_id)] = stack_small_id
        event = self._event(
            "StackTrySettleEvent",
            [
                ("stack_small_id", "small_id", stack_small_id),
                ("selected_node_id", "small_id", node_id),
                ("requested_attestation_nodes", "small_ids", nodes),
                ("committed_stack_proof", "bytes", committed_stack_proof),
                ("stack_merkle_leaf", "bytes", stack_merkle_leaf),
                ("num_claimed_compute_units", "u64", num_claimed_compute_units),
            ],
        )
        return CallResult(
            (event,),
            created=(self.ticket_field_id(stack_small_id), ticket.object_id),
            mutated=(self.db_object_id,),
        )

    def _dispute(
        self, ticket: Ticket, stack: Stack, node_id: int, commitment: bytes
    ) -> tuple[Ticket, EmittedEvent]:
        """`start_attestation_dispute` after its ticket lookup (shared by two callers)."""
        fn = "start_attestation_dispute"
        if ticket.is_in_dispute:
            raise self._abort(E_STACK_ALREADY_IN_DISPUTE, fn)
        if stack.security_level != SAMPLING_CONSENSUS:
            raise self._abort(E_TASK_SECURITY_LEVEL_NOT_SAMPLING_CONSENSUS, fn)
        event = self._event(
            "StackAttestationDisputeEvent",
            [
                ("stack_small_id", "small_id", ticket.stack_small_id),
                ("attestation_commitment", "bytes", commitment),
                ("attestation_node_id", "small_id", node_id),
                ("original_node_id", "small_id", ticket.selected_node_id),
                ("original_commitment", "bytes", ticket.committed_stack_proof),
            ],
        )
        return replace(ticket, is_in_dispute=True), event

    def start_attestation_dispute(
        self,
        *,
        sender: str,
        badge_id: str,
        stack_small_id: int,
        attestation_commitment: bytes,
        epoch: int | None = None,
    ) -> CallResult:
        """Any badge holder may call it; the contract checks neither the badge's node nor the
        epoch (`epoch` is accepted only so that every call has the same keywords)."""
        node_id = self.check_badge(sender, badge_id)
        ticket = self._s.tickets.get(stack_small_id)
        if ticket is None:
            raise self._missing()
        if ticket.is_in_dispute:
            raise self._abort(E_STACK_ALREADY_IN_DISPUTE, "start_attestation_dispute")
        stack = self._s.stacks.get(stack_small_id)
        if stack is None:
            raise self._missing()
        new_ticket, event = self._dispute(ticket, stack, node_id, bytes(attestation_commitment))
        self._s.tickets[stack_small_id] = new_ticket
        return CallResult((event,), mutated=(self.db_object_id, ticket.object_id))

    def submit_stack_settlement_attestation(
        self,
        *,
        sender: str,
        badge_id: str,
        stack_small_id: int,
        committed_stack_proof: bytes,
        stack_merkle_leaf: bytes,
        epoch: int | None = None,
    ) -> CallResult:
        fn = "submit_stack_settlement_attestation"
        node_id = self.check_badge(sender, badge_id)
        stack = self._s.stacks.get(stack_small_id)
        if stack is None:
            raise self._abort(E_STACK_NOT_FOUND, fn)
        ticket = self._s.tickets.get(stack_small_id)
        if ticket is None:
            raise self._abort(E_STACK_NOT_IN_SETTLEMENT_DISPUTE, fn)
        if len(committed_stack_proof) != HASH_LEN:
            raise self._abort(E_INVALID_COMMITTED_STACK_PROOF, fn)
        if len(stack_merkle_leaf) != HASH_LEN:
            raise self._abort(E_INVALID_STACK_MERKLE_LEAF, fn)
        if stack.security_level != SAMPLING_CONSENSUS:
            raise self._abort(E_STACK_DOES_NOT_REQUIRE_SAMPLING_CONSENSUS, fn)
        now = self._epoch(epoch)
        if ticket.dispute_settled_at_epoch < now:
            raise self._abort(E_STACK_DISPUTE_PERIOD_OVER, fn)
        requested = ticket.requested_attestation_nodes
        if node_id not in requested:
            raise self._abort(E_NODE_NOT_SELECTED_FOR_ATTESTATION, fn)
        index = requested.index(node_id)  # the FIRST position, even if sampled twice
        mutated = (self.db_object_id, ticket.object_id)
        proof, leaf = bytes(committed_stack_proof), bytes(stack_merkle_leaf)

        if proof != ticket.committed_stack_proof:
            new_ticket, event = self._dispute(ticket, stack, node_id, proof)
            self._s.tickets[stack_small_id] = new_ticket
            return CallResult((event,), mutated=mutated)

        start = (index + 1) * HASH_LEN
        leaves = ticket.stack_merkle_leaves_vector
        leaves = leaves[:start] + leaf + leaves[start + HASH_LEN :]
        attested = (*ticket.already_attested_nodes, node_id)
        new_ticket = replace(
            ticket, stack_merkle_leaves_vector=leaves, already_attested_nodes=attested
        )
        attestation_event = self._event(
            "NewStackSettlementAttestationEvent",
            [
                ("stack_small_id", "small_id", stack_small_id),
                ("attestation_node_id", "small_id", node_id),
                ("committed_stack_proof", "bytes", proof),
                ("stack_merkle_leaf", "bytes", leaf),
            ],
        )
        events: tuple[EmittedEvent, ...] = (attestation_event,)
        if len(attested) == len(requested):
            root = hashlib.blake2b(leaves, digest_size=HASH_LEN).digest()
            if root != proof:
                # the slot write and the count stay: the contract disputes without reverting
                new_ticket, dispute_event = self._dispute(new_ticket, stack, node_id, proof)
                events = (dispute_event,)
            else:
                events = (
                    attestation_event,
                    self._event(
                        "StackSettlementTicketEvent",
                        [
                            ("stack_small_id", "small_id", stack_small_id),
                            ("selected_node_id", "small_id", stack.selected_node_id),
                            ("num_claimed_compute_units", "u64", ticket.num_claimed_compute_units),
                            ("requested_attestation_nodes", "small_ids", requested),
                            (
                                "dispute_settled_at_epoch",
                                "u64",
                                now,
                            ),  # the contract emits ctx.epoch()
                            ("committed_stack_proof", "bytes", proof),
                        ],
                    ),
                )
        self._s.tickets[stack_small_id] = new_ticket
        return CallResult(events, mutated=mutated)

    def _fee(self, security_level: int, price: int, units: int) -> int:
        if security_level == SAMPLING_CONSENSUS:
            product = units * price * self.sampling_consensus_charge_permille
            _check_u64(units * price, "fee")
            _check_u64(product, "fee")
            return product // (ONE_MILLION * 1000)
        _check_u64(units * price, "fee")
        return units * price // ONE_MILLION

    def claim_funds(
        self,
        *,
        sender: str,
        badge_id: str,
        settled_ticket_ids: list[int],
        epoch: int | None = None,
    ) -> CallResult:
        fn = "fetch_stack_settlement_ticket_data"
        node_id = self.check_badge(sender, badge_id)
        now = self._epoch(epoch)
        removed: set[int] = set()
        treasury = self._s.fee_treasury
        fee_credit: dict[int, int] = {}
        timeouts: dict[int, int] = {}
        refunds: list[tuple[str, int]] = []
        total_node_fee = 0
        events: list[EmittedEvent] = []
        deleted: list[str] = []
        for stack_small_id in settled_ticket_ids:
            ticket = None if stack_small_id in removed else self._s.tickets.get(stack_small_id)
            if ticket is None:
                raise self._missing()
            stack = self._s.stacks[stack_small_id]
            if ticket.selected_node_id != node_id:
                raise self._abort(E_NODE_NOT_SELECTED_FOR_SETTLEMENT, fn)
            if ticket.is_in_dispute:
                raise self._abort(E_STACK_IN_DISPUTE, fn)
            if now < ticket.dispute_settled_at_epoch:
                raise self._abort(E_STACK_DISPUTE_PERIOD_IS_NOT_OVER, fn)
            if stack.is_claimed:
                raise self._abort(E_STACK_ALREADY_CLAIMED, fn)
            price, level = stack.price_per_one_million, stack.security_level
            node_fee = self._fee(level, price, ticket.num_claimed_compute_units)
            total_node_fee += node_fee
            _check_u64(total_node_fee, "total_node_fee")
            refund = self._fee(
                level, price, stack.num_compute_units - ticket.num_claimed_compute_units
            )
            for attester in ticket.requested_attestation_nodes:
                if attester in ticket.already_attested_nodes:
                    if self.extra_nodes_count == 0:
                        raise MoveArithmeticError("division by zero")
                    share = node_fee // self.extra_nodes_count
                    fee_credit[attester] = fee_credit.get(attester, 0) + share
                else:
                    timeouts[attester] = timeouts.get(attester, 0) + 1
            if refund > 0:
                if refund > treasury:
                    raise MoveAbort(E_NOT_ENOUGH, BALANCE_MODULE, "split")
                treasury -= refund
                refunds.append((stack.owner, refund))
            removed.add(stack_small_id)
            deleted += [
                self.ticket_field_id(stack_small_id),
                ticket.object_id,
                self.stack_field_id(stack_small_id),
            ]
            events.append(
                self._event(
                    "StackSettlementTicketClaimedEvent",
                    [
                        ("stack_small_id", "small_id", stack_small_id),
                        ("selected_node_id", "small_id", ticket.selected_node_id),
                        ("attestation_nodes", "small_ids", ticket.requested_attestation_nodes),
                        ("num_claimed_compute_units", "u64", ticket.num_claimed_compute_units),
                        ("user_refund_amount", "u64", refund),
                    ],
                )
            )
        if total_node_fee > treasury:
            raise MoveAbort(E_NOT_ENOUGH, BALANCE_MODULE, "split")
        treasury -= total_node_fee
        own_available = self._s.nodes[node_id].available_fee_amount + fee_credit.get(node_id, 0)
        if own_available > treasury:
            raise MoveAbort(E_NOT_ENOUGH, BALANCE_MODULE, "split")
        treasury -= own_available

        # commit
        for stack_small_id in removed:
            gone = self._s.tickets.pop(stack_small_id)
            self._s.ticket_index.pop(gone.object_id, None)
            self._s.ticket_index.pop(self.ticket_field_id(stack_small_id), None)
            del self._s.stacks[stack_small_id]
        for attester, credit in fee_credit.items():
            if attester in self._s.nodes:
                self._s.nodes[attester].available_fee_amount += credit
        for attester, n in timeouts.items():
            if attester in self._s.nodes:
                self._s.nodes[attester].timeouts += n
        self._s.nodes[node_id].available_fee_amount = 0
        for owner, amount in refunds:
            self._pay(owner, amount)
        self._pay(_norm(sender), total_node_fee + own_available)
        self._s.fee_treasury = treasury
        return CallResult(tuple(events), mutated=(self.db_object_id,), deleted=tuple(deleted))

    def _pay(self, address: str, amount: int) -> None:
        if amount > 0:
            self._s.paid_out[address] = self._s.paid_out.get(address, 0) + amount

    def _event(self, name: str, fields: list[Field]) -> EmittedEvent:
        return EmittedEvent(name, self._type(name), render_json(fields), render_bcs(fields))

    # ------------------------------------------------------------------ reads

    def stack(self, stack_small_id: int) -> Stack | None:
        return self._s.stacks.get(stack_small_id)

    def ticket(self, stack_small_id: int) -> Ticket | None:
        return self._s.tickets.get(stack_small_id)

    def node_available_fees(self, node_small_id: int) -> int:
        return self._s.nodes[node_small_id].available_fee_amount

    def node_timeouts(self, node_small_id: int) -> int:
        return self._s.nodes[node_small_id].timeouts

    def paid_out(self, address: str) -> int:
        return self._s.paid_out.get(_norm(address), 0)

    @property
    def fee_treasury(self) -> int:
        return self._s.fee_treasury

    def _ticket_fields(self, t: Ticket) -> list[Field]:
        return [
            ("id", "id", t.object_id),
            ("stack_small_id", "small_id", t.stack_small_id),
            ("selected_node_id", "small_id", t.selected_node_id),
            ("num_claimed_compute_units", "u64", t.num_claimed_compute_units),
            ("requested_attestation_nodes", "small_ids", t.requested_attestation_nodes),
            ("dispute_settled_at_epoch", "u64", t.dispute_settled_at_epoch),
            ("committed_stack_proof", "bytes", t.committed_stack_proof),
            ("stack_merkle_leaves_vector", "bytes", t.stack_merkle_leaves_vector),
            ("already_attested_nodes", "small_ids", t.already_attested_nodes),
            ("is_in_dispute", "bool", t.is_in_dispute),
        ]

    def ticket_json(self, stack_small_id: int) -> dict[str, Any] | None:
        """The ticket object's JSON as a Sui node renders it, or None if there is none."""
        t = self._s.tickets.get(stack_small_id)
        return None if t is None else render_json(self._ticket_fields(t))

    def _db_fields(self) -> list[Field]:
        s = self._s
        return [
            ("id", "id", self.db_object_id),
            ("tickets", "id", self.tickets_uid),
            ("next_node_small_id", "small_id", s.next_node),
            ("next_task_small_id", "small_id", 2),
            ("next_stack_small_id", "small_id", s.next_stack),
            ("nodes", "table", (self.nodes_table_id, len(s.nodes))),
            ("models", "table", (self.models_table_id, 0)),
            ("tasks", "table", (self.tasks_table_id, 1)),
            ("stacks", "table", (self.stacks_table_id, len(s.stacks))),
            ("stack_settlement_tickets", "table", (self.tickets_table_id, len(s.tickets))),
            ("fee_treasury", "u64", s.fee_treasury),  # Balance<USDC> renders as its value
            ("communal_treasury", "u64", 0),
            ("cross_validation_probability_permille", "u64", self.probability_permille),
            ("cross_validation_extra_nodes_count", "u64", self.extra_nodes_count),
            ("sampling_consensus_charge_permille", "u64", self.sampling_consensus_charge_permille),
            (
                "cross_validation_extra_nodes_charge_permille",
                "u64",
                self.extra_nodes_charge_permille,
            ),
            ("key_rotation_counter", "u64", 0),
            ("nonce", "u64", 0),
            ("is_registration_disabled", "bool", False),
            ("registration_collateral_in_protocol_token", "u64", 0),
            ("permille_to_slash_node_on_timeout", "u64", 100),
            ("permille_for_oracle_on_dispute", "u64", 100),
            ("permille_for_honest_nodes_on_dispute", "u64", 200),
        ]

    def get_object(self, object_id: str) -> ModelObject | None:
        """AtomaDb, a NodeBadge, a ticket or a ticket's table-entry object, by id."""
        oid = _norm(object_id)
        if oid == self.db_object_id:
            f = self._db_fields()
            return ModelObject(oid, self.db_type, Owner("shared"), render_json(f), render_bcs(f))
        badge = self._s.badges.get(oid)
        if badge is not None:
            f = [("id", "id", oid), ("small_id", "small_id", badge.node_small_id)]
            return ModelObject(
                oid, self.badge_type, Owner("address", badge.owner), render_json(f), render_bcs(f)
            )
        stack_small_id = self._s.ticket_index.get(oid)
        if stack_small_id is not None:
            t = self._s.tickets[stack_small_id]
            field_id = self.ticket_field_id(stack_small_id)
            if oid == t.object_id:
                f = self._ticket_fields(t)
                return ModelObject(
                    oid, self.ticket_type, Owner("object", field_id), render_json(f), render_bcs(f)
                )
            if oid == field_id:
                f = [
                    ("id", "id", field_id),
                    ("name", "wrapped_small_id", stack_small_id),
                    ("value", "id", t.object_id),
                ]
                return ModelObject(
                    oid,
                    self.ticket_field_type,
                    Owner("object", self.tickets_table_id),
                    render_json(f),
                    render_bcs(f),
                )
        return None

    # ------------------------------------------------------------------ persistence

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state, rng included, so a restored model continues identically."""
        s = self._s
        version, internal, gauss = self.rng.getstate()
        return {
            "package_id": self.package_id,
            "db_object_id": self.db_object_id,
            "rng": [version, list(internal), gauss],
            "probability_permille": self.probability_permille,
            "extra_nodes_count": self.extra_nodes_count,
            "sampling_consensus_charge_permille": self.sampling_consensus_charge_permille,
            "extra_nodes_charge_permille": self.extra_nodes_charge_permille,
            "epoch": s.epoch,
            "next_node": s.next_node,
            "next_stack": s.next_stack,
            "uid_counter": s.uid_counter,
            "fee_treasury": s.fee_treasury,
            "badges": [[b.object_id, b.owner, b.node_small_id] for b in s.badges.values()],
            "nodes": [
                [n, a.available_fee_amount, a.timeouts, a.disabled] for n, a in s.nodes.items()
            ],
            "stacks": [
                [
                    st.small_id,
                    st.owner,
                    st.selected_node_id,
                    st.num_compute_units,
                    st.price_per_one_million,
                    st.security_level,
                    st.is_claimed,
                ]
                for st in s.stacks.values()
            ],
            "tickets": [
                {
                    "object_id": t.object_id,
                    "stack_small_id": t.stack_small_id,
                    "selected_node_id": t.selected_node_id,
                    "num_claimed_compute_units": t.num_claimed_compute_units,
                    "requested_attestation_nodes": list(t.requested_attestation_nodes),
                    "dispute_settled_at_epoch": t.dispute_settled_at_epoch,
                    "committed_stack_proof": t.committed_stack_proof.hex(),
                    "stack_merkle_leaves_vector": t.stack_merkle_leaves_vector.hex(),
                    "already_attested_nodes": list(t.already_attested_nodes),
                    "is_in_dispute": t.is_in_dispute,
                }
                for t in s.tickets.values()
            ],
            "paid_out": dict(s.paid_out),
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> AtomaDbModel:
        rng = random.Random()
        version, internal, gauss = data["rng"]
        rng.setstate((version, tuple(internal), gauss))
        model = cls(
            package_id=data["package_id"],
            db_object_id=data["db_object_id"],
            rng=rng,
            sampling_probability=0.0,
            extra_nodes_count=data["extra_nodes_count"],
            sampling_consensus_charge_permille=data["sampling_consensus_charge_permille"],
            extra_nodes_charge_permille=data["extra_nodes_charge_permille"],
        )
        model.probability_permille = data["probability_permille"]
        s = model._s
        s.epoch, s.next_node, s.next_stack = data["epoch"], data["next_node"], data["next_stack"]
        s.uid_counter, s.fee_treasury = data["uid_counter"], data["fee_treasury"]
        s.badges = {b[0]: Badge(b[0], b[1], b[2]) for b in data["badges"]}
        s.nodes = {n[0]: _NodeAccount(n[1], n[2], n[3]) for n in data["nodes"]}
        s.stacks = {st[0]: Stack(*st) for st in data["stacks"]}
        s.tickets = {
            t["stack_small_id"]: Ticket(
                object_id=t["object_id"],
                stack_small_id=t["stack_small_id"],
                selected_node_id=t["selected_node_id"],
                num_claimed_compute_units=t["num_claimed_compute_units"],
                requested_attestation_nodes=tuple(t["requested_attestation_nodes"]),
                dispute_settled_at_epoch=t["dispute_settled_at_epoch"],
                committed_stack_proof=bytes.fromhex(t["committed_stack_proof"]),
                stack_merkle_leaves_vector=bytes.fromhex(t["stack_merkle_leaves_vector"]),
                already_attested_nodes=tuple(t["already_attested_nodes"]),
                is_in_dispute=t["is_in_dispute"],
            )
            for t in data["tickets"]
        }
        s.paid_out = dict(data["paid_out"])
        for stack_small_id, t in s.tickets.items():
            s.ticket_index[t.object_id] = stack_small_id
            s.ticket_index[model.ticket_field_id(stack_small_id)] = stack_small_id
        return model


def _norm(address: str) -> str:
    s = address[2:] if address[:2].lower() == "0x" else address
    if not s or len(s) > 64:
        raise ValueError(f"{address!r} is not a Sui address")
    int(s, 16)
    return "0x" + s.lower().rjust(64, "0")


def _permille(probability: float) -> int:
    if not 0.0 <= probability <= 1.0:
        raise ValueError("sampling_probability must be in [0, 1]")
    return round(probability * 1000)
