"""The StackSettlement state machine: settle each stack once, then follow its ticket.

Per stack, independently (one stack failing never blocks the others):
  proof input -> simulate (aborts if a ticket exists: read it, send nothing) ->
  write-ahead intent -> execute -> record effects and the ticket (phase Settling).
The chain follower moves Settling stacks on to Settled or Disputed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from atoma_operator.atoma import calls
from atoma_operator.atoma.events import StackTrySettleEvent, parse_event
from atoma_operator.atoma.hashing import ProofInputError
from atoma_operator.atoma.ticket import (
    SettlementTicket,
    attestation_status,
    is_settled,
)
from atoma_operator.kube import ObjectKey
from atoma_operator.reconcile.backoff import (
    next_pass_in,
    record_failure,
    record_terminal,
    wait_seconds,
)
from atoma_operator.reconcile.conditions import Summary, apply_summary
from atoma_operator.reconcile.context import ReconcileContext
from atoma_operator.reconcile.holds import UnitRef
from atoma_operator.reconcile.proofs import WAITING_REASON, proof_input_waits, settlement_inputs
from atoma_operator.reconcile.units import (
    Notice,
    StatusSink,
    StatusWriter,
    Verdict,
    gather_all,
    restore_known_intent,
    run_unit,
)
from atoma_operator.resources.common import Condition, StatusModel
from atoma_operator.resources.stack_settlement import (
    ClaimedAttestationStatus,
    SettlementPhase,
    StackSettlementSpec,
    StackSettlementStackStatus,
    StackSettlementStatus,
)
from atoma_operator.resources.submission import PendingTransaction
from atoma_operator.statedb import STATE_DATABASE_UNAVAILABLE, StateDatabaseUnavailable
from atoma_operator.sui.errors import ChainUnavailable
from atoma_operator.sui.types import MoveCall, ObjectRef, TxOutcome

KIND = "StackSettlement"
FINAL = {SettlementPhase.SETTLED, SettlementPhase.FAILED, SettlementPhase.DISPUTED}
SUBMITTED = {SettlementPhase.SETTLING, *FINAL}


@dataclass
class PassResult:
    status: StackSettlementStatus
    notices: list[Notice] = field(default_factory=list)
    retry_after: float | None = None  # seconds until the next pass is due; None: done


@dataclass(frozen=True)
class BadgeChoice:
    node_small_id: int
    object_id: str


class BadgeError(Exception):
    """The resource names no usable badge; needs a user (a new resource or settings)."""


def choose_badge(node_small_id: int | None, ctx: ReconcileContext) -> BadgeChoice:
    badges = ctx.settings.badges
    if node_small_id is None:
        if len(badges) == 1:
            return BadgeChoice(badges[0].node_small_id, badges[0].object_id)
        if not badges:
            raise BadgeError("the operator holds no node badge (settings: badges)")
        held = ", ".join(str(b.node_small_id) for b in badges)
        raise BadgeError(
            f"spec.nodeSmallId is required: the operator holds several badges ({held})"
        )
    badge = ctx.settings.badge_for(node_small_id)
    if badge is None:
        held = ", ".join(str(b.node_small_id) for b in badges) or "none"
        raise BadgeError(f"the operator holds no badge for node {node_small_id} (it holds: {held})")
    return BadgeChoice(badge.node_small_id, badge.object_id)


def apply_ticket(
    entry: StackSettlementStackStatus, ticket: SettlementTicket, epoch: int | None
) -> None:
    """Copy the ticket's claimed-stack fields (seed 000) into the stack's status.

    Idempotent: derived from the ticket alone, so replaying an event changes nothing.
    """
    entry.selected_node_id = ticket.selected_node_id
    entry.num_claimed_compute_units = ticket.num_claimed_compute_units
    entry.requested_attestation_nodes = list(ticket.requested_attestation_nodes)
    entry.received_attestations = ticket.received_attestations
    entry.required_attestations = ticket.required_attestations
    entry.dispute_settled_at_epoch = ticket.dispute_settled_at_epoch
    entry.attestation_status = ClaimedAttestationStatus(attestation_status(ticket).value)
    entry.claimed = ticket.is_claimed or None
    if entry.settlement_time is None:
        entry.settlement_time = datetime.now(UTC).replace(microsecond=0)
    if ticket.is_in_dispute:
        entry.phase = SettlementPhase.DISPUTED
        entry.settlement_complete = False
    elif epoch is not None and is_settled(ticket, epoch):
        entry.phase = SettlementPhase.SETTLED
        entry.settlement_complete = True
    else:
        entry.phase = SettlementPhase.SETTLING
        entry.settlement_complete = False


def ticket_from_outcome(outcome: TxOutcome | None, type_origin: str) -> SettlementTicket | None:
    """The new ticket as our own successful try_settle_stack created it, from its event.

    Saves two object reads per stack; the follower re-reads the ticket itself whenever a
    later event (attestation, dispute) concerns it.
    """
    if outcome is None or not outcome.succeeded or outcome.epoch is None:
        return None
    for event in outcome.events:
        parsed = parse_event(event, package_id=type_origin)
        if isinstance(parsed, StackTrySettleEvent):
            nodes = list(parsed.requested_attestation_nodes)
            return SettlementTicket(
                stack_small_id=parsed.stack_small_id,
                selected_node_id=parsed.selected_node_id,
                num_claimed_compute_units=parsed.num_claimed_compute_units,
                requested_attestation_nodes=nodes,
                committed_stack_proof=parsed.committed_stack_proof,
                stack_merkle_leaves=parsed.stack_merkle_leaf,
                dispute_settled_at_epoch=outcome.epoch + 1,
                already_attested_nodes=[],
                is_in_dispute=False,
            )
    return None


def ensure_entries(spec: StackSettlementSpec, status: StackSettlementStatus) -> None:
    """One status entry per spec stack, in spec order."""
    known = {s.stack_small_id: s for s in status.stacks}
    status.stacks = [
        known.get(sid) or StackSettlementStackStatus(stack_small_id=sid)
        for sid in spec.stack_small_ids
    ]


def tx_digests(status: StackSettlementStatus) -> list[str]:
    """The seed's tx_digests: executed transactions in stack order."""
    return [s.tx_digest for s in status.stacks if s.tx_digest]


def summarise(status: StackSettlementStatus) -> Summary:
    stacks = status.stacks
    n = len(stacks)
    disputed = [s for s in stacks if s.phase is SettlementPhase.DISPUTED]
    failed = [s for s in stacks if s.phase is SettlementPhase.FAILED]
    open_ = [s for s in stacks if s.phase not in SUBMITTED]
    settled = [s for s in stacks if s.phase is SettlementPhase.SETTLED]
    if disputed:
        ids = ", ".join(str(s.stack_small_id) for s in disputed)
        return Summary(
            False, False, True, "Disputed", f"stack(s) {ids} are in dispute on chain", False
        )
    if open_:
        waiting = next((s for s in open_ if s.reason == WAITING_REASON), None)
        first = waiting or next((s for s in open_ if s.last_error), None)
        message = f"{n - len(open_)}/{n} stacks submitted"
        if first is not None:
            message += f"; stack {first.stack_small_id}: {first.last_error}"
        # Waiting on the state database or a proof input is named: nothing is submitted.
        blocked = any(s.reason == STATE_DATABASE_UNAVAILABLE for s in open_)
        if blocked:
            reason = STATE_DATABASE_UNAVAILABLE
        else:
            reason = WAITING_REASON if waiting is not None else "Submitting"
        return Summary(False, True, False, reason, message, False)
    if failed:
        first_failed = failed[0]
        reason = _reason_of(first_failed)
        ok = n - len(failed)
        return Summary(
            False,
            False,
            True,
            reason,
            f"{len(failed)}/{n} stacks failed ({ok} settled or settling); stack "
            f"{first_failed.stack_small_id}: {first_failed.last_error or 'failed'}",
            False,
        )
    if len(settled) == n:
        return Summary(True, False, False, "Settled", f"all {n} stacks settled on chain", True)
    return Summary(
        True,
        False,
        False,
        "Submitted",
        f"all {n} settlement transactions executed; {len(settled)}/{n} settled so far",
        False,
    )


def conclude_pass(result: PassResult, generation: int) -> None:
    conclude(result.status, generation)


def conclude(status: StackSettlementStatus, generation: int) -> None:
    """Derive the resource-level fields (digests, conditions) from the per-stack entries."""
    status.tx_digests = tx_digests(status)
    status.conditions = with_summary(status.conditions, summarise(status), generation)
    status.observed_generation = generation
    settled = sum(1 for s in status.stacks if s.phase is SettlementPhase.SETTLED)
    status.settled = f"{settled}/{len(status.stacks)}"


def with_summary(current: list[Condition], summary: Summary, generation: int) -> list[Condition]:
    raw = [c.to_k8s() for c in current]
    return [Condition.model_validate(c) for c in apply_summary(raw, summary, generation)]


def _reason_of(entry: StackSettlementStackStatus) -> str:
    return entry.reason or "Failed"


async def reconcile_settlement(
    *,
    namespace: str,
    name: str,
    generation: int,
    spec: StackSettlementSpec,
    status: StackSettlementStatus,
    ctx: ReconcileContext,
    write_status: StatusWriter,
    waiting_passes: int = 0,
) -> PassResult:
    """One pass over every stack; returns the new status and when to come back.

    `waiting_passes` is unused: every stack keeps its own backoff in status (the
    parameter keeps one call shape for both kinds, see reconcile.run)."""
    ensure_entries(spec, status)

    def render() -> StatusModel:
        status.tx_digests = tx_digests(status)
        return status

    sink = StatusSink(render, write_status)
    owner = ObjectKey(KIND, namespace, name)
    notices: list[Notice] = []
    unbuilt = [e for e in status.stacks if e.phase not in SUBMITTED and e.pending is None]
    if ctx.policy is not None and unbuilt:  # nothing new is signed unless a policy permits
        refusal = await ctx.policy.admit(
            namespace, spec, status.policy_charges, per_badge=False, now=ctx.clock()
        )
        if refusal is not None:
            for entry in unbuilt:  # a transaction recorded earlier is still resumed
                entry.phase = SettlementPhase.FAILED
                record_terminal(entry, refusal.reason, refusal.message, now=ctx.clock())
            notices.append(Notice("Warning", refusal.reason, refusal.message))
    try:
        badge = choose_badge(spec.node_small_id, ctx)
        status.node_small_id = badge.node_small_id
    except BadgeError as exc:
        # Nothing new can be built; a transaction recorded earlier is still resumed.
        badge = BadgeChoice(spec.node_small_id or -1, f"unknown-badge-{spec.node_small_id}")
        for entry in status.stacks:
            if entry.phase not in SUBMITTED and entry.pending is None:
                entry.phase = SettlementPhase.FAILED
                record_terminal(entry, "NoBadge", str(exc), now=ctx.clock())
        notices.append(Notice("Warning", "Failed", str(exc)))

    async def one(entry: StackSettlementStackStatus) -> None:
        try:
            notices.extend(
                await _step_stack(entry, spec=spec, badge=badge, owner=owner, ctx=ctx, sink=sink)
            )
        except ChainUnavailable as exc:
            record_failure(
                entry,
                "ChainUnavailable",
                f"chain unavailable: {exc}",
                now=ctx.clock(),
                base=ctx.settings.retry_base_seconds,
                cap=ctx.settings.retry_max_seconds,
            )
        except StateDatabaseUnavailable as exc:
            record_failure(
                entry,
                STATE_DATABASE_UNAVAILABLE,
                str(exc),
                now=ctx.clock(),
                base=ctx.settings.retry_base_seconds,
                cap=ctx.settings.retry_max_seconds,
            )

    await gather_all(one(e) for e in status.stacks)
    status.tx_digests = tx_digests(status)
    now = ctx.clock()
    waits = [next_pass_in(e, now) for e in status.stacks if e.phase not in SUBMITTED]
    return PassResult(status, notices, min(waits) if waits else None)


async def _step_stack(
    entry: StackSettlementStackStatus,
    *,
    spec: StackSettlementSpec,
    badge: BadgeChoice,
    owner: ObjectKey,
    ctx: ReconcileContext,
    sink: StatusSink,
) -> list[Notice]:
    namespace = owner.namespace
    unit = UnitRef(owner, f"stack/{entry.stack_small_id}")
    restore_known_intent(entry, unit, ctx)
    if entry.phase in SUBMITTED and entry.pending is None:
        return []
    if entry.pending is None and wait_seconds(entry, ctx.clock()) > 0:
        return []
    sid = entry.stack_small_id
    label = f"stack {sid}"
    async with ctx.locks(("stack", sid)):
        proof_input: tuple[bytes, bytes] | None = None
        if entry.pending is None:
            try:
                scheme = spec.proof_scheme or ctx.settings.proof_scheme
                extra = (await ctx.tickets.db_info()).cross_validation_extra_nodes_count
                proof_input = await settlement_inputs(
                    spec.proof_for(sid),
                    stack_small_id=sid,
                    scheme=scheme,
                    num_attestation_nodes=extra,
                    namespace=namespace,
                    read_value=ctx.read_value,
                    read_stack_hash=ctx.read_stack_hash,
                )
            except ProofInputError as exc:
                if proof_input_waits(
                    entry,
                    exc,
                    now=ctx.clock(),
                    deadline_seconds=ctx.settings.proof_input_wait_seconds,
                    retry_base_seconds=ctx.settings.retry_base_seconds,
                ):
                    entry.phase = SettlementPhase.PENDING
                    return []
                entry.phase = SettlementPhase.FAILED
                record_terminal(entry, "InvalidProofInput", exc.message, now=ctx.clock())
                return [Notice("Warning", "InvalidProofInput", exc.message)]
        # No ticket read up front: the simulation before the intent aborts with
        # EStackInSettlementDispute (a ticket exists) when the chain has the work, and
        # only then is the ticket read. Saves one to two reads for every new stack.

        committed, leaf = proof_input or (b"", b"")
        db, random = await ctx.db(), await ctx.random()

        def build(badge_ref: ObjectRef) -> MoveCall:
            return calls.try_settle_stack(
                ctx.package_id,
                db,
                badge_ref,
                sid,
                spec.num_claimed_compute_units,
                committed,
                leaf,
                random,
            )

        async def record(_: PendingTransaction) -> None:
            entry.phase = SettlementPhase.SUBMITTING
            await sink.flush()

        result = await run_unit(
            entry,
            kind=KIND,
            label=label,
            unit=unit,
            badge_id=badge.object_id,
            build_call=build if proof_input is not None else None,
            ctx=ctx,
            spec=spec,
            record_intent=record,
        )
        notices = list(result.notices)
        if result.verdict in (Verdict.SUCCEEDED, Verdict.ALREADY_DONE):
            origin = await ctx.tickets.packages.type_origin()
            ticket = ticket_from_outcome(result.outcome, origin)
            epoch = result.outcome.epoch if ticket is not None and result.outcome else None
            if ticket is None:  # not our transaction's ticket: read the chain's
                ticket = await ctx.tickets.read(sid)
                epoch = await ctx.gateway.current_epoch()
            if ticket is not None:
                apply_ticket(entry, ticket, epoch)
            else:
                entry.phase = SettlementPhase.SETTLING
            if result.verdict is Verdict.SUCCEEDED:
                notices.insert(
                    0, Notice("Normal", "Submitted", f"{label}: settled by {entry.tx_digest}")
                )
            else:
                already = f"the chain already holds a settlement for it ({result.reason})"
                notices.insert(0, Notice("Normal", "AlreadySettled", f"{label}: {already}"))
        elif result.verdict is Verdict.TERMINAL:
            entry.phase = SettlementPhase.FAILED
        elif result.verdict is Verdict.AGAIN:
            entry.phase = SettlementPhase.PENDING
        else:
            entry.phase = SettlementPhase.SUBMITTING if entry.pending else SettlementPhase.PENDING
        return notices
