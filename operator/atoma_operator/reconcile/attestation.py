"""The Attestation state machine: one transaction per (stack, attesting badge).

Per stack: read the ticket (none yet: wait), find this operator's badges among the
requested attestation nodes (all of them when spec.nodeSmallId is omitted), slot =
first position + 1, skip a node that already attested, check the dispute window,
then the same write-ahead submission protocol as settlements. The seed's error strings
("Failed to parse attestation nodes", "Failed to submit node attestation proof tx",
"Failed to get stack total hash") keep their meaning in condition messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from atoma_operator.atoma import calls
from atoma_operator.atoma.events import (
    StackAttestationDisputeEvent,
    StackSettlementTicketEvent,
    parse_event,
)
from atoma_operator.atoma.hashing import ProofInputError
from atoma_operator.atoma.ticket import (
    SettlementTicket,
    TicketParseError,
    attestation_slot,
    attestation_window_open,
    has_attested,
)
from atoma_operator.kube import ObjectKey
from atoma_operator.reconcile.backoff import next_pass_in, record_terminal, wait_seconds
from atoma_operator.reconcile.conditions import Summary
from atoma_operator.reconcile.context import ReconcileContext
from atoma_operator.reconcile.holds import UnitRef
from atoma_operator.reconcile.proofs import WAITING_REASON, attestation_inputs, proof_input_waits
from atoma_operator.reconcile.settlement import with_summary
from atoma_operator.reconcile.units import (
    Notice,
    StatusSink,
    StatusWriter,
    Verdict,
    gather_all,
    restore_known_intent,
    run_unit,
)
from atoma_operator.resources.attestation import (
    AttestationEntryStatus,
    AttestationPhase,
    AttestationSpec,
    AttestationStatus,
)
from atoma_operator.resources.common import StatusModel
from atoma_operator.resources.submission import PendingTransaction
from atoma_operator.settings import NodeBadge
from atoma_operator.statedb import STATE_DATABASE_UNAVAILABLE, StateDatabaseUnavailable
from atoma_operator.sui.errors import ChainUnavailable
from atoma_operator.sui.types import MoveCall, ObjectRef, TxOutcome

Flush = Callable[[], Awaitable[None]]
KIND = "Attestation"
FINAL = {AttestationPhase.SETTLED, AttestationPhase.FAILED, AttestationPhase.DISPUTED}
DONE = {AttestationPhase.ATTESTED, *FINAL}
PARSE_NODES = "Failed to parse attestation nodes"
SUBMIT_FAILED = "Failed to submit node attestation proof tx"


@dataclass
class StackProblem:
    """A stack-level state with no (stack, node) entry to hold it."""

    stack_small_id: int
    reason: str
    message: str
    terminal: bool


@dataclass
class AttestationPass:
    status: AttestationStatus
    problems: list[StackProblem] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    retry_after: float | None = None
    refused: bool = False
    """No SettlementPolicy permits this resource: only recorded transactions go on."""


def tx_digests(status: AttestationStatus) -> list[str]:
    return [a.tx_digest for a in status.attestations if a.tx_digest]


def summarise(status: AttestationStatus, problems: list[StackProblem]) -> Summary:
    entries = status.attestations
    disputed = [a for a in entries if a.phase is AttestationPhase.DISPUTED]
    failed = [a for a in entries if a.phase is AttestationPhase.FAILED]
    open_ = [a for a in entries if a.phase not in DONE]
    waiting = [p for p in problems if not p.terminal]
    stuck = [p for p in problems if p.terminal]
    if disputed:
        d = disputed[0]
        return Summary(
            False,
            False,
            True,
            "Disputed",
            f"stack {d.stack_small_id}: attestation by node {d.node_small_id} disagreed with "
            "the committed proof; the stack is in dispute",
        )
    if open_ or waiting:
        parts = [f"{len(entries) - len(open_)}/{len(entries)} attestations submitted"]
        parts += [p.message for p in waiting[:3]]
        first_err = next((a for a in open_ if a.last_error), None)
        if first_err is not None:
            parts.append(
                f"stack {first_err.stack_small_id} node {first_err.node_small_id}: {first_err.last_error}"
            )
        proof_wait = next((a for a in open_ if a.reason == WAITING_REASON), None)
        if proof_wait is not None and not waiting:
            parts.append(
                f"stack {proof_wait.stack_small_id} node {proof_wait.node_small_id}: "
                f"{proof_wait.last_error}"
            )
        reason = waiting[0].reason if waiting else None
        reason = reason or (WAITING_REASON if proof_wait is not None else "Submitting")
        return Summary(False, True, False, reason, "; ".join(parts))
    if failed or stuck:
        if stuck:
            return Summary(False, False, True, stuck[0].reason, stuck[0].message)
        f = failed[0]
        return Summary(
            False,
            False,
            True,
            _reason_of(f),
            f"stack {f.stack_small_id} node {f.node_small_id}: {f.last_error or 'failed'}",
        )
    return Summary(True, False, False, "Attested", f"all {len(entries)} attestations on chain")


def conclude_pass(result: AttestationPass, generation: int) -> None:
    conclude(result.status, result.problems, generation)


def conclude(status: AttestationStatus, problems: list[StackProblem], generation: int) -> None:
    """Derive the resource-level fields (digests, conditions) from the entries."""
    status.tx_digests = tx_digests(status)
    status.conditions = with_summary(status.conditions, summarise(status, problems), generation)
    status.observed_generation = generation
    on_chain = (AttestationPhase.ATTESTED, AttestationPhase.SETTLED)
    attested = sum(1 for a in status.attestations if a.phase in on_chain)
    status.attested = f"{attested}/{len(status.attestations)}"


def _reason_of(entry: AttestationEntryStatus) -> str:
    return entry.reason or "Failed"


def _outcome_phase(outcome: TxOutcome | None, type_origin: str) -> AttestationPhase:
    for event in outcome.events if outcome else ():
        parsed = parse_event(event, package_id=type_origin)
        if isinstance(parsed, StackAttestationDisputeEvent):
            return AttestationPhase.DISPUTED
        if isinstance(parsed, StackSettlementTicketEvent):
            return AttestationPhase.SETTLED
    return AttestationPhase.ATTESTED


async def reconcile_attestation(
    *,
    namespace: str,
    name: str,
    generation: int,
    spec: AttestationSpec,
    status: AttestationStatus,
    ctx: ReconcileContext,
    write_status: StatusWriter,
    waiting_passes: int = 0,
) -> AttestationPass:
    result = AttestationPass(status)

    def render() -> StatusModel:
        status.tx_digests = tx_digests(status)
        return status

    flush = StatusSink(render, write_status).flush
    owner = ObjectKey(KIND, namespace, name)

    async def one_stack(sid: int) -> None:
        try:
            await _stack(
                sid, spec=spec, status=status, owner=owner, ctx=ctx, out=result, flush=flush
            )
        except ChainUnavailable as exc:
            result.problems.append(
                StackProblem(
                    sid, "ChainUnavailable", f"stack {sid}: chain unavailable: {exc}", False
                )
            )
        except StateDatabaseUnavailable as exc:
            result.problems.append(
                StackProblem(sid, STATE_DATABASE_UNAVAILABLE, f"stack {sid}: {exc}", False)
            )

    stacks = list(spec.stack_small_ids)
    may_build = not status.attestations or any(
        a.phase not in DONE and a.pending is None for a in status.attestations
    )
    if ctx.policy is not None and may_build:  # nothing new is signed unless a policy permits
        refusal = await ctx.policy.admit(
            namespace, spec, status.policy_charges, per_badge=True, now=ctx.clock()
        )
        if refusal is not None:
            for a in status.attestations:
                if a.phase not in DONE and a.pending is None:
                    a.phase = AttestationPhase.FAILED
                    record_terminal(a, refusal.reason, refusal.message, now=ctx.clock())
            result.notices.append(Notice("Warning", refusal.reason, refusal.message))
            resumed = {a.stack_small_id for a in status.attestations if a.pending is not None}
            result.problems += [
                StackProblem(sid, refusal.reason, refusal.message, True)
                for sid in stacks
                if sid not in resumed
            ]
            stacks = [sid for sid in stacks if sid in resumed]  # recorded ones still finish
            result.refused = True
    await gather_all(one_stack(sid) for sid in stacks)
    order = {sid: i for i, sid in enumerate(spec.stack_small_ids)}
    status.attestations.sort(key=lambda a: (order.get(a.stack_small_id, 1 << 30), a.slot))
    status.tx_digests = tx_digests(status)
    now = ctx.clock()
    waits = [next_pass_in(a, now) for a in status.attestations if a.phase not in DONE]
    if any(not p.terminal for p in result.problems):
        # Nothing per entry holds this wait (no ticket yet, chain down): back off with
        # the number of consecutive passes that ended waiting.
        base, cap = ctx.settings.retry_base_seconds, ctx.settings.retry_max_seconds
        waits.append(min(cap, base * 2 ** min(waiting_passes, 16)))
    result.retry_after = min(waits) if waits else None
    return result


async def _stack(
    sid: int,
    *,
    spec: AttestationSpec,
    status: AttestationStatus,
    owner: ObjectKey,
    ctx: ReconcileContext,
    out: AttestationPass,
    flush: Flush,
) -> None:
    entries = [a for a in status.attestations if a.stack_small_id == sid]
    if entries and all(a.phase in DONE and a.pending is None for a in entries):
        return
    try:
        ticket = await ctx.tickets.read(sid)
    except TicketParseError as exc:
        out.problems.append(
            StackProblem(
                sid, "AttestationNodesUnreadable", f"{PARSE_NODES} for stack {sid}: {exc}", True
            )
        )
        return
    if ticket is None and not any(a.pending for a in entries):
        out.problems.append(
            StackProblem(
                sid, "WaitingForTicket", f"stack {sid}: no settlement ticket on chain yet", False
            )
        )
        return
    nodes = _nodes_for(sid, spec, ticket, ctx, out)
    for node in nodes:
        slot = attestation_slot(ticket, node) if ticket else None
        entry = status.entry(sid, node)
        if entry is None:
            if slot is None:
                continue
            entry = AttestationEntryStatus(stack_small_id=sid, node_small_id=node, slot=slot)
            status.attestations.append(entry)
    epoch = await ctx.gateway.current_epoch()
    work = [
        a
        for a in status.attestations
        if a.stack_small_id == sid
        and (a.phase not in DONE or a.pending)
        and (a.pending is not None or not out.refused)
    ]
    for entry in work:
        out.notices.extend(
            await _step_entry(
                entry,
                ticket=ticket,
                epoch=epoch,
                spec=spec,
                owner=owner,
                ctx=ctx,
                flush=flush,
            )
        )


def _nodes_for(
    sid: int,
    spec: AttestationSpec,
    ticket: SettlementTicket | None,
    ctx: ReconcileContext,
    out: AttestationPass,
) -> list[int]:
    held = {b.node_small_id for b in ctx.settings.badges}
    if spec.node_small_id is not None:
        node = spec.node_small_id
        if node not in held:
            out.problems.append(
                StackProblem(
                    sid,
                    "UnknownNode",
                    f"{SUBMIT_FAILED} for stack {sid}: the operator holds no badge for node {node}",
                    True,
                )
            )
            return []
        if ticket is not None and attestation_slot(ticket, node) is None:
            out.problems.append(
                StackProblem(
                    sid,
                    "NodeNotRequested",
                    f"{SUBMIT_FAILED} for stack {sid}: node {node} is not among the requested "
                    f"attestation nodes {list(ticket.requested_attestation_nodes)}",
                    True,
                )
            )
            return []
        return [node]
    if ticket is None:
        return []
    mine = [n for n in dict.fromkeys(ticket.requested_attestation_nodes) if n in held]
    if not mine:
        out.problems.append(
            StackProblem(
                sid,
                "NodeNotRequested",
                f"stack {sid}: none of this operator's badges ({sorted(held)}) was requested to "
                f"attest (requested: {list(ticket.requested_attestation_nodes)})",
                True,
            )
        )
    return mine


async def _step_entry(
    entry: AttestationEntryStatus,
    *,
    ticket: SettlementTicket | None,
    epoch: int,
    spec: AttestationSpec,
    owner: ObjectKey,
    ctx: ReconcileContext,
    flush: Flush,
) -> list[Notice]:
    """One (stack, node) under its lock: two resources attesting the same stack with the
    same badge must not both pass the "already attested?" check before either executes
    (found by the property test), so the ticket is read again inside the lock."""
    async with ctx.locks(("attest", entry.stack_small_id, entry.node_small_id)):
        if entry.pending is None and ticket is not None:
            ticket = await ctx.tickets.read(entry.stack_small_id) or ticket
        return await _step_entry_locked(
            entry, ticket=ticket, epoch=epoch, spec=spec, owner=owner, ctx=ctx, flush=flush
        )


async def _step_entry_locked(
    entry: AttestationEntryStatus,
    *,
    ticket: SettlementTicket | None,
    epoch: int,
    spec: AttestationSpec,
    owner: ObjectKey,
    ctx: ReconcileContext,
    flush: Flush,
) -> list[Notice]:
    namespace = owner.namespace
    label = f"stack {entry.stack_small_id} node {entry.node_small_id}"
    unit = UnitRef(owner, f"stack/{entry.stack_small_id}/node/{entry.node_small_id}")
    restore_known_intent(entry, unit, ctx)
    if entry.pending is None:
        if wait_seconds(entry, ctx.clock()) > 0:
            return []
        if ticket is None:  # gone (claimed) while a sibling entry was still resolving
            return []
        if ticket.is_in_dispute:
            entry.phase = AttestationPhase.DISPUTED
            return [Notice("Warning", "Disputed", f"{label}: the ticket is in dispute")]
        if has_attested(ticket, entry.node_small_id):
            entry.phase = AttestationPhase.ATTESTED
            return [
                Notice(
                    "Normal", "AlreadyAttested", f"{label}: already attested on chain; nothing sent"
                )
            ]
        if not attestation_window_open(ticket, epoch):
            entry.phase = AttestationPhase.FAILED
            msg = (
                f"{SUBMIT_FAILED}: the dispute period ended at epoch "
                f"{ticket.dispute_settled_at_epoch} (now {epoch})"
            )
            record_terminal(entry, "DisputePeriodOver", msg, now=ctx.clock())
            return [Notice("Warning", "Failed", f"{label}: {msg}")]
    badge = ctx.settings.badge_for(entry.node_small_id)
    if badge is None:  # removed from settings: resume what was recorded, build nothing
        if entry.pending is None:
            entry.phase = AttestationPhase.FAILED
            msg = f"{SUBMIT_FAILED}: the operator no longer holds a badge for node {entry.node_small_id}"
            record_terminal(entry, "NoBadge", msg, now=ctx.clock())
            return [Notice("Warning", "Failed", f"{label}: {msg}")]
        badge = NodeBadge(object_id="0x" + "0" * 64, node_small_id=entry.node_small_id)
    proof_input: tuple[bytes, bytes] | None = None
    if entry.pending is None and ticket is not None:
        try:
            scheme = spec.proof_scheme or ctx.settings.proof_scheme
            proof_input = await attestation_inputs(
                spec.proof_for(entry.stack_small_id),
                stack_small_id=entry.stack_small_id,
                scheme=scheme,
                slot=entry.slot,
                num_attestation_nodes=ticket.num_slots - 1,
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
                entry.phase = AttestationPhase.PENDING
                return []
            entry.phase = AttestationPhase.FAILED
            record_terminal(entry, "InvalidProofInput", exc.message, now=ctx.clock())
            return [Notice("Warning", "InvalidProofInput", exc.message)]
    committed, leaf = proof_input or (b"", b"")

    db = await ctx.db()

    def build(badge_ref: ObjectRef) -> MoveCall:
        return calls.submit_stack_settlement_attestation(
            ctx.package_id, db, badge_ref, entry.stack_small_id, committed, leaf
        )

    async def record(_: PendingTransaction) -> None:
        entry.phase = AttestationPhase.SUBMITTING
        await flush()

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
    if result.verdict is Verdict.SUCCEEDED:
        entry.phase = _outcome_phase(result.outcome, await ctx.tickets.packages.type_origin())
        notices.insert(
            0,
            Notice(
                "Normal", "Submitted", f"{label}: attested by {entry.tx_digest} (slot {entry.slot})"
            ),
        )
        if entry.phase is AttestationPhase.DISPUTED:
            notices.append(
                Notice(
                    "Warning", "Disputed", f"{label}: the proof disagreed; the stack is in dispute"
                )
            )
    elif result.verdict is Verdict.TERMINAL:
        entry.phase = AttestationPhase.FAILED
        entry.last_error = f"{SUBMIT_FAILED}: {entry.last_error}"
    elif result.verdict is Verdict.AGAIN:
        entry.phase = AttestationPhase.PENDING
    else:
        entry.phase = AttestationPhase.SUBMITTING if entry.pending else AttestationPhase.PENDING
    return notices
