"""An in-memory chain for unit tests of the reconcile layer (no gRPC, no Kubernetes).

`FakeGateway` implements the `ChainGateway` Protocol with a small model of the Atoma
contract: owned objects (gas coins, node badges) whose versions move on every executed
transaction, settlement tickets served through `get_object_json` in the RPC JSON shapes
the real `TicketReader` parses, and per-unit scripts of what simulate and execute do
(succeed with events, Move abort, outage, refusal). It counts every call, so tests
assert what was (and, above all, what was not) sent.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from atoma_operator.atoma.aborts import code
from atoma_operator.atoma.calls import SUBMIT_ATTESTATION, TRY_SETTLE_STACK
from atoma_operator.atoma.dynfield import ticket_field_object_id
from atoma_operator.atoma.events import event_type
from atoma_operator.atoma.hashing import HASH_LEN
from atoma_operator.atoma.ticket import SettlementTicket
from atoma_operator.reconcile.context import ReconcileContext
from atoma_operator.reconcile.holds import HoldBook
from atoma_operator.reconcile.tickets import TicketReader
from atoma_operator.resources.common import StatusModel
from atoma_operator.settings import NodeBadge, Settings
from atoma_operator.sui.errors import ChainUnavailable, RejectionKind, TransactionRejected
from atoma_operator.sui.gas import GasCoinManager
from atoma_operator.sui.txbuild import normalize_id
from atoma_operator.sui.types import (
    ChainEvent,
    ChainGateway,
    EventPage,
    ExecutionStatus,
    GasCoin,
    MoveCall,
    ObjectRef,
    OwnedObjectArg,
    PureArg,
    SharedObjectArg,
    SignedTransaction,
    TxOutcome,
)


def oid(n: int) -> str:
    """A canonical object id from a small number (readable in failure output)."""
    return normalize_id(hex(n))


PACKAGE_ID = oid(0xA70A)
DB_ID = oid(0xDB)
STACKS_TABLE_ID = oid(0xDB01)
TICKETS_TABLE_ID = oid(0xDB02)
SENDER = oid(0x5E4D)
GAS_USED = 2_000_000
"""MIST charged per executed transaction (success or abort)."""
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


# --- what a scripted call does ----------------------------------------------------------------


@dataclass(frozen=True)
class Succeed:
    """Effects say success; `events` are (event name, fields) of the `db` module."""

    events: tuple[tuple[str, dict[str, Any]], ...] = ()


@dataclass(frozen=True)
class Abort:
    """A Move abort with this code (see `atoma.aborts.code`)."""

    code: int
    module: str = "db"


@dataclass(frozen=True)
class Fail:
    """An execution failure that is not a Move abort (e.g. out of gas)."""

    error: str = "InsufficientGas"


@dataclass(frozen=True)
class Unavailable:
    """The node does not answer. With `executed=True` (execute only) the transaction ran
    but the answer was lost: its digest is then known to `get_transaction`."""

    executed: bool = False


@dataclass(frozen=True)
class Reject:
    """The node refuses the transaction before executing it."""

    kind: RejectionKind


Step = Succeed | Abort | Fail | Unavailable | Reject


@dataclass
class Script:
    simulate: deque[Step] = field(default_factory=deque)
    execute: deque[Step] = field(default_factory=deque)


def abort(name: str) -> Abort:
    return Abort(code(name))


# --- tickets ------------------------------------------------------------------------------------


def make_ticket(
    stack_small_id: int,
    *,
    selected_node_id: int = 1,
    num_claimed_compute_units: int = 100,
    requested: Iterable[int] = (),
    attested: Iterable[int] = (),
    slots: int | None = None,
    dispute_settled_at_epoch: int = 12,
    in_dispute: bool = False,
) -> SettlementTicket:
    """A ticket as the contract would hold it; `slots` defaults to len(requested) + 1."""
    requested = list(requested)
    n_slots = slots if slots is not None else len(requested) + 1
    return SettlementTicket(
        stack_small_id=stack_small_id,
        selected_node_id=selected_node_id,
        num_claimed_compute_units=num_claimed_compute_units,
        requested_attestation_nodes=requested,
        committed_stack_proof=bytes([stack_small_id % 256]) * HASH_LEN,
        stack_merkle_leaves=bytes(HASH_LEN * n_slots),
        dispute_settled_at_epoch=dispute_settled_at_epoch,
        already_attested_nodes=list(attested),
        is_in_dispute=in_dispute,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _ids(values: Iterable[int]) -> list[dict[str, str]]:
    return [{"inner": str(v)} for v in values]


def ticket_json(ticket: SettlementTicket, object_id: str) -> dict[str, Any]:
    """The ticket object's RPC JSON (u64 as strings, small ids as {"inner"}, bytes base64)."""
    return {
        "id": {"id": object_id},
        "stack_small_id": {"inner": str(ticket.stack_small_id)},
        "selected_node_id": {"inner": str(ticket.selected_node_id)},
        "num_claimed_compute_units": str(ticket.num_claimed_compute_units),
        "requested_attestation_nodes": _ids(ticket.requested_attestation_nodes),
        "committed_stack_proof": _b64(ticket.committed_stack_proof),
        "stack_merkle_leaves_vector": _b64(ticket.stack_merkle_leaves),
        "dispute_settled_at_epoch": str(ticket.dispute_settled_at_epoch),
        "already_attested_nodes": _ids(ticket.already_attested_nodes),
        "is_in_dispute": ticket.is_in_dispute,
    }


def dispute_event(
    stack_small_id: int, node: int, original_node: int = 1
) -> tuple[str, dict[str, Any]]:
    return (
        "StackAttestationDisputeEvent",
        {
            "stack_small_id": {"inner": str(stack_small_id)},
            "attestation_commitment": _b64(bytes(HASH_LEN)),
            "attestation_node_id": {"inner": str(node)},
            "original_node_id": {"inner": str(original_node)},
            "original_commitment": _b64(b"\x01" * HASH_LEN),
        },
    )


# --- the gateway --------------------------------------------------------------------------------


class FakeGateway:
    """In-memory `ChainGateway`; see the module docstring."""

    def __init__(
        self,
        *,
        epoch: int = 10,
        extra_nodes: int = 1,
        gas_price: int = 1_000,
        dispute_epochs: int = 2,
    ) -> None:
        self.epoch = epoch
        self.extra_nodes = extra_nodes
        self.gas_price = gas_price
        self.dispute_epochs = dispute_epochs
        self.objects: dict[str, ObjectRef] = {}
        self.balances: dict[str, int] = {}
        self.badge_nodes: dict[str, int] = {}
        self.tickets: dict[int, SettlementTicket] = {}
        self.requested_on_settle: dict[int, list[int]] = {}
        """Attestation nodes the contract will sample when stack N is settled."""
        self.scripts: dict[tuple[str, int], Script] = defaultdict(Script)
        self.down: set[str] = set()
        """Method names that raise ChainUnavailable (a partial outage)."""
        self.calls: Counter[str] = Counter()
        self.executes: Counter[str] = Counter()  # per digest
        self.lookups: Counter[str] = Counter()  # get_transaction per digest
        self.built: list[MoveCall] = []
        self.sent: list[SignedTransaction] = []  # every execute request, in order
        self.transactions: dict[str, TxOutcome] = {}  # executed, by digest
        self._calls_by_digest: dict[str, MoveCall] = {}
        self._next_id = 0x1000

    # -- set-up -------------------------------------------------------------------------------

    def _new_id(self) -> str:
        self._next_id += 1
        return oid(self._next_id)

    def add_coin(self, balance: int = 10_000_000_000) -> str:
        coin = self._new_id()
        self.objects[coin] = ObjectRef(coin, 1, f"c{coin[-4:]}v1")
        self.balances[coin] = balance
        return coin

    def add_badge(self, node_small_id: int) -> NodeBadge:
        badge = self._new_id()
        self.objects[badge] = ObjectRef(badge, 1, f"b{badge[-4:]}v1")
        self.badge_nodes[badge] = node_small_id
        return NodeBadge(object_id=badge, node_small_id=node_small_id)

    def set_ticket(self, ticket: SettlementTicket) -> None:
        self.tickets[ticket.stack_small_id] = ticket

    def script(
        self,
        function: str,
        stack_small_id: int,
        *,
        simulate: Iterable[Step] = (),
        execute: Iterable[Step] = (),
    ) -> None:
        """Queue what the next simulate/execute calls for this unit do (then: the model)."""
        s = self.scripts[(function, stack_small_id)]
        s.simulate.extend(simulate)
        s.execute.extend(execute)

    def bump(self, object_id: str) -> ObjectRef:
        """Move an owned object to its next version (some other transaction used it)."""
        ref = self.objects[object_id]
        new = ObjectRef(
            object_id, ref.version + 1, f"{ref.digest[0]}{object_id[-4:]}v{ref.version + 1}"
        )
        self.objects[object_id] = new
        return new

    # -- observations --------------------------------------------------------------------------

    @property
    def executed_count(self) -> int:
        return self.calls["execute"]

    def unit_of(self, digest: str) -> tuple[str, int]:
        """(Move function, stack small id) of a transaction this gateway built."""
        return _unit(self._calls_by_digest[digest])

    def owned_of(self, digest: str) -> list[ObjectRef]:
        """Owned inputs (badge versions) of a transaction this gateway built, gas excluded."""
        return _owned(self._calls_by_digest[digest])

    def sent_for(self, function: str, stack_small_id: int) -> list[SignedTransaction]:
        return [
            tx
            for tx in self.sent
            if _unit(self._calls_by_digest[tx.digest]) == (function, stack_small_id)
        ]

    # -- ChainGateway ----------------------------------------------------------------------------

    def _enter(self, method: str) -> None:
        self.calls[method] += 1
        if method in self.down:
            raise ChainUnavailable(f"{method}: node unreachable (fake outage)")

    @property
    def sender(self) -> str:
        return SENDER

    async def reference_gas_price(self) -> int:
        self._enter("reference_gas_price")
        return self.gas_price

    async def current_epoch(self) -> int:
        self._enter("current_epoch")
        return self.epoch

    async def get_object_ref(self, object_id: str) -> ObjectRef | None:
        self._enter("get_object_ref")
        return self.objects.get(normalize_id(object_id))

    async def get_object_type(self, object_id: str) -> str | None:
        self._enter("get_object_type")
        return f"{PACKAGE_ID}::db::AtomaDb" if normalize_id(object_id) == DB_ID else None

    async def get_object_json(self, object_id: str) -> dict[str, Any] | None:
        self._enter("get_object_json")
        object_id = normalize_id(object_id)
        if object_id == DB_ID:
            return {
                "id": {"id": DB_ID},
                "stacks": {"id": STACKS_TABLE_ID, "size": "0"},
                "stack_settlement_tickets": {
                    "id": TICKETS_TABLE_ID,
                    "size": str(len(self.tickets)),
                },
                "cross_validation_probability_permille": "10",
                "cross_validation_extra_nodes_count": str(self.extra_nodes),
            }
        for sid, ticket in self.tickets.items():
            if object_id == ticket_field_object_id(TICKETS_TABLE_ID, PACKAGE_ID, sid):
                return {
                    "id": {"id": object_id},
                    "name": {"name": {"inner": str(sid)}},
                    "value": _ticket_object_id(sid),
                }
            if object_id == _ticket_object_id(sid):
                return ticket_json(ticket, object_id)
        return None

    async def shared_object(self, object_id: str, *, mutable: bool) -> SharedObjectArg:
        self._enter("shared_object")
        return SharedObjectArg(normalize_id(object_id), 3, mutable)

    async def list_gas_coins(self, owner: str | None = None) -> list[GasCoin]:
        self._enter("list_gas_coins")
        return [GasCoin(self.objects[c], b) for c, b in self.balances.items()]

    async def build_and_sign(
        self, call: MoveCall, *, gas_coin: ObjectRef, gas_price: int, gas_budget: int
    ) -> SignedTransaction:
        """Deterministic: the same call on the same coin version gives the same digest."""
        self._enter("build_and_sign")
        self.built.append(call)
        payload = json.dumps(
            {
                "target": call.target,
                "args": [_arg_json(a) for a in call.arguments],
                "gas": [gas_coin.object_id, gas_coin.version, gas_coin.digest],
                "price": gas_price,
                "budget": gas_budget,
            },
            sort_keys=True,
        ).encode()
        digest = hashlib.sha256(payload).hexdigest()[:44]
        self._calls_by_digest[digest] = call
        return SignedTransaction(
            digest=digest,
            tx_bytes_b64=_b64(payload),
            signatures=(_b64(b"sig:" + digest.encode()),),
            gas_coin=gas_coin,
            gas_budget=gas_budget,
            gas_price=gas_price,
        )

    async def simulate(self, tx: SignedTransaction) -> TxOutcome:
        self._enter("simulate")
        call = self._call_of(tx)
        step = self._next(self.scripts[_unit(call)].simulate) or self._model_step(call)
        if isinstance(step, Unavailable):
            raise ChainUnavailable("simulate: node unreachable (scripted)")
        if isinstance(step, Reject):
            raise TransactionRejected(step.kind, "refused by the fake node (scripted)")
        return self._outcome(tx, step, events=())

    async def execute(self, tx: SignedTransaction) -> TxOutcome:
        self._enter("execute")
        self.sent.append(tx)
        self.executes[tx.digest] += 1
        if tx.digest in self.transactions:  # Sui deduplicates by digest
            return self.transactions[tx.digest]
        call = self._call_of(tx)
        step = self._next(self.scripts[_unit(call)].execute)
        if isinstance(step, Unavailable) and not step.executed:
            raise ChainUnavailable("execute: node unreachable (scripted)")
        if isinstance(step, Reject):
            raise TransactionRejected(step.kind, "refused by the fake node (scripted)")
        for ref in (tx.gas_coin, *_owned(call)):
            if self.objects.get(ref.object_id) != ref:
                raise TransactionRejected(
                    RejectionKind.STALE_OBJECT,
                    f"object {ref.object_id} version {ref.version} is stale",
                )
        effect = step if isinstance(step, Succeed | Abort | Fail) else self._model_step(call)
        events: tuple[ChainEvent, ...] = ()
        if isinstance(effect, Succeed):
            events = self._apply(call, effect, tx.digest)
        for ref in _owned(call):
            self.bump(ref.object_id)
        outcome = self._outcome(
            tx, effect, events=events, gas_after=self.bump(tx.gas_coin.object_id)
        )
        self.balances[tx.gas_coin.object_id] -= GAS_USED
        self.transactions[tx.digest] = outcome
        if isinstance(step, Unavailable):
            raise ChainUnavailable("execute: the answer was lost (scripted)")
        return outcome

    async def get_transaction(self, digest: str) -> TxOutcome | None:
        self._enter("get_transaction")
        self.lookups[digest] += 1
        return self.transactions.get(digest)

    async def list_events(
        self,
        *,
        event_type_prefix: str,
        after: str | None,
        limit: int,
        start_checkpoint: int | None = None,
    ) -> EventPage:
        self._enter("list_events")
        return EventPage(events=(), next_cursor=None, at_tip=True)

    async def ledger_bounds(self) -> tuple[int, int]:
        self._enter("ledger_bounds")
        return 0, 0

    async def close(self) -> None:
        self.calls["close"] += 1

    # -- the contract model ------------------------------------------------------------------------

    @staticmethod
    def _next(queue: deque[Step]) -> Step | None:
        return queue.popleft() if queue else None

    def _call_of(self, tx: SignedTransaction) -> MoveCall:
        call = self._calls_by_digest.get(tx.digest)
        assert call is not None, f"transaction {tx.digest} was not built by this gateway"
        return call

    def _model_step(self, call: MoveCall) -> Step:
        """What the contract does when nothing is scripted."""
        function, sid = _unit(call)
        if function == TRY_SETTLE_STACK and sid in self.tickets:
            return abort("EStackInSettlementDispute")
        if function == SUBMIT_ATTESTATION:
            ticket = self.tickets.get(sid)
            if ticket is None:
                return abort("EStackNotInSettlementDispute")
            if self.epoch > ticket.dispute_settled_at_epoch:
                return abort("EStackDisputePeriodOver")
        return Succeed()

    def _apply(self, call: MoveCall, step: Succeed, digest: str) -> tuple[ChainEvent, ...]:
        """Successful effects on the model: a ticket appears, an attestation is counted."""
        function, sid = _unit(call)
        badge = _owned(call)[0].object_id if _owned(call) else None
        node = self.badge_nodes.get(badge or "", 0)
        if function == TRY_SETTLE_STACK and sid not in self.tickets:
            units = call.arguments[3]
            assert isinstance(units, PureArg)
            self.tickets[sid] = make_ticket(
                sid,
                selected_node_id=node,
                num_claimed_compute_units=int(units.value),
                requested=self.requested_on_settle.get(sid, ()),
                slots=self.extra_nodes + 1,
                dispute_settled_at_epoch=self.epoch + self.dispute_epochs,
            )
        elif function == SUBMIT_ATTESTATION and sid in self.tickets:
            ticket = self.tickets[sid]
            self.tickets[sid] = replace(
                ticket, already_attested_nodes=[*ticket.already_attested_nodes, node]
            )
        return tuple(
            ChainEvent(event_type(PACKAGE_ID, name), dict(fields), digest, i)
            for i, (name, fields) in enumerate(step.events)
        )

    def _outcome(
        self,
        tx: SignedTransaction,
        step: Step,
        *,
        events: tuple[ChainEvent, ...],
        gas_after: ObjectRef | None = None,
    ) -> TxOutcome:
        if isinstance(step, Abort):
            return TxOutcome(
                tx.digest,
                ExecutionStatus.MOVE_ABORT,
                abort_code=step.code,
                abort_module=f"{PACKAGE_ID}::{step.module}",
                error=f"MoveAbort {step.code}",
                gas_used_mist=GAS_USED,
                gas_coin_after=gas_after,
                epoch=self.epoch,
            )
        if isinstance(step, Fail):
            return TxOutcome(
                tx.digest,
                ExecutionStatus.FAILURE,
                error=step.error,
                gas_used_mist=GAS_USED,
                gas_coin_after=gas_after,
                epoch=self.epoch,
            )
        return TxOutcome(
            tx.digest,
            ExecutionStatus.SUCCESS,
            gas_used_mist=GAS_USED,
            gas_coin_after=gas_after,
            events=events,
            epoch=self.epoch,
        )


def _ticket_object_id(stack_small_id: int) -> str:
    return oid(0x7_0000 + stack_small_id)


def _unit(call: MoveCall) -> tuple[str, int]:
    """(function, stack small id): the stack is the first u64 argument of every db call."""
    sid = next(a.value for a in call.arguments if isinstance(a, PureArg) and a.type == "u64")
    return call.function, int(sid)


def _owned(call: MoveCall) -> list[ObjectRef]:
    return [a.ref for a in call.arguments if isinstance(a, OwnedObjectArg)]


def _arg_json(arg: object) -> Any:
    if isinstance(arg, PureArg):
        value = arg.value.hex() if isinstance(arg.value, bytes) else arg.value
        return [arg.type, value]
    if isinstance(arg, OwnedObjectArg):
        return ["owned", arg.ref.object_id, arg.ref.version, arg.ref.digest]
    assert isinstance(arg, SharedObjectArg)
    return ["shared", arg.object_id, arg.initial_shared_version, arg.mutable]


# --- the rest of a reconcile context -------------------------------------------------------------


class FakeClock:
    """A clock that moves only when told to (backoff deadlines become exact)."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeValues:
    """ConfigMap/Secret keys: (namespace, kind, name, key) -> bytes; LookupError if absent."""

    def __init__(self, values: Mapping[tuple[str, str, str, str], bytes] | None = None) -> None:
        self.values = dict(values or {})
        self.reads: list[tuple[str, str, str, str]] = []

    async def __call__(self, namespace: str, kind: str, name: str, key: str) -> bytes:
        self.reads.append((namespace, kind, name, key))
        try:
            return self.values[(namespace, kind, name, key)]
        except KeyError:
            raise LookupError(f"{kind} {namespace}/{name} has no key {key!r}") from None


class StatusLog:
    """A `write_status` callback that remembers each write and how many transactions
    had been executed when it happened (the write-ahead order made visible)."""

    def __init__(self, gateway: FakeGateway) -> None:
        self._gateway = gateway
        self.writes: list[tuple[int, dict[str, Any]]] = []

    async def __call__(self, status: StatusModel) -> None:
        raw = status.to_k8s()
        self.writes.append((self._gateway.executed_count, json.loads(json.dumps(raw))))


def make_context(
    gateway: FakeGateway,
    *,
    badges: Iterable[NodeBadge] = (),
    clock: FakeClock | None = None,
    values: FakeValues | None = None,
    gas: GasCoinManager | None = None,
    concurrency: int = 8,
    **settings: Any,
) -> ReconcileContext:
    """A ReconcileContext over the fake chain, with the real TicketReader and gas manager."""
    config = Settings(
        package_id=PACKAGE_ID,
        atoma_db_id=DB_ID,
        badges=list(badges),
        retry_base_seconds=5.0,
        retry_max_seconds=300.0,
        **settings,
    )
    holds = HoldBook()
    if gas is None:
        gas = GasCoinManager(gateway, held=holds.is_held)
        holds.on_release(gas.wake)
    return ReconcileContext(
        gateway=gateway,
        gas=gas,
        holds=holds,
        settings=config,
        tickets=TicketReader(gateway, package_id=PACKAGE_ID, db_id=DB_ID),
        read_value=values or FakeValues(),
        submit_slots=asyncio.Semaphore(concurrency),
        clock=clock or FakeClock(),
    )


if TYPE_CHECKING:
    _conforms: ChainGateway = FakeGateway()
