"""One reconcile pass of one resource: from the object as read to its final status write.

Plain async code (no kopf): the handlers call `run_pass` and map its result to kopf's
retries; the stateful property test calls it against an in-memory cluster. Both kinds go
through the same steps and differ only by the data in `KINDS`:

  validate spec and status -> the kind's state machine (intents written on the way, each
  through a conditional writer that merges through 409s) -> conclude (digests, conditions,
  observedGeneration) -> one final write if anything changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from atoma_operator.kube import ObjectKey
from atoma_operator.reconcile import attestation, settlement
from atoma_operator.reconcile.backoff import waiting_on
from atoma_operator.reconcile.conditions import Summary, apply_summary
from atoma_operator.reconcile.context import ReconcileContext
from atoma_operator.reconcile.statuswrite import ConditionalStatusWriter, StatusStore
from atoma_operator.reconcile.units import Notice
from atoma_operator.resources.attestation import AttestationSpec, AttestationStatus
from atoma_operator.resources.common import StatusModel
from atoma_operator.resources.stack_settlement import StackSettlementSpec, StackSettlementStatus
from atoma_operator.resources.submission import TransactionProgress

STARTING = Summary(False, True, False, "Submitting", "submitting transactions")


@dataclass
class PassOutcome:
    notices: list[Notice] = field(default_factory=list)
    retry_after: float | None = None  # seconds until the next pass is due; None: done
    writes: int = 0
    waiting_on: frozenset[str] = frozenset()
    """Badges (or the gas pool) units found busy: wake the resource when one is released."""


@dataclass(frozen=True)
class KindOps:
    """What differs between the two kinds: models, state machine, conclusion."""

    spec_model: type[BaseModel]
    status_model: type[StatusModel]
    reconcile: Callable[..., Awaitable[Any]]
    """`reconcile_settlement` / `reconcile_attestation` (same keyword arguments)."""
    conclude: Callable[[Any, int], None]
    """Derives digests, conditions and observedGeneration from the pass result."""
    entries: Callable[[Any], Iterable[TransactionProgress]]
    """The status's units (stacks / attestations)."""


KINDS: dict[str, KindOps] = {
    "StackSettlement": KindOps(
        StackSettlementSpec,
        StackSettlementStatus,
        settlement.reconcile_settlement,
        settlement.conclude_pass,
        lambda status: status.stacks,
    ),
    "Attestation": KindOps(
        AttestationSpec,
        AttestationStatus,
        attestation.reconcile_attestation,
        attestation.conclude_pass,
        lambda status: status.attestations,
    ),
}


MAX_EVENT_MESSAGE = 1024


def aggregate(notices: list[Notice]) -> list[Notice]:
    """One Event per resource, type and reason per pass, not one per stack: the
    messages are joined (Kubernetes caps an Event message at 1 KiB)."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for notice in notices:
        grouped.setdefault((notice.type, notice.reason), []).append(notice.message)
    out: list[Notice] = []
    for (type_, reason), messages in grouped.items():
        text = "; ".join(dict.fromkeys(messages))
        if len(text) > MAX_EVENT_MESSAGE:
            text = text[: MAX_EVENT_MESSAGE - 20] + f" … ({len(messages)} in all)"
        out.append(Notice(type_, reason, text))
    return out


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
    return f"{where}: {err['msg']}"


async def run_pass(
    ctx: ReconcileContext,
    store: StatusStore,
    key: ObjectKey,
    obj: Mapping[str, Any],
    *,
    waiting_passes: int = 0,
) -> PassOutcome:
    """One pass over a resource read from the apiserver (or kopf's fresh body).

    Raises Conflict/StaleStatus (re-read and run again), NotFound (gone: stop), and lets
    an unexpected exception through (the caller retries with backoff). A spec or status
    that fails validation ends Stalled with the reason, instead of retrying forever.
    """
    ops = KINDS[key.kind]
    generation = int(obj["metadata"].get("generation") or 1)
    writer = ConditionalStatusWriter(store, key, obj)
    raw_status: dict[str, Any] = dict(obj.get("status") or {})
    try:
        spec = ops.spec_model.model_validate(obj.get("spec") or {})
    except ValidationError as exc:
        return await _stall(writer, raw_status, generation, "InvalidSpec", _first_error(exc))
    try:
        status = ops.status_model.model_validate(raw_status)
    except ValidationError as exc:
        message = f"status was edited into an invalid shape ({_first_error(exc)})"
        return await _stall(writer, raw_status, generation, "InvalidStatus", message)
    # Observed from the first write on (the intents included): Argo CD and kstatus then
    # show what is happening instead of "waiting for the operator to observe generation".
    status.observed_generation = generation  # type: ignore[attr-defined]
    conditions = getattr(status, "conditions", None)
    if not conditions:
        status.conditions = settlement.with_summary([], STARTING, generation)  # type: ignore[attr-defined]
    result = await ops.reconcile(
        namespace=key.namespace,
        name=key.name,
        generation=generation,
        spec=spec,
        status=status,
        ctx=ctx,
        write_status=writer,
        waiting_passes=waiting_passes,
    )
    ops.conclude(result, generation)
    entries = list(ops.entries(result.status))
    parked_on = waiting_on(entries)
    all_parked = bool(entries) and all(e.waits_for for e in entries) and not result.notices
    quiet = all_parked and _waits_quietly(obj, raw_status, writer.writes, ctx.clock())
    if not quiet and result.status.to_k8s() != writer.base:
        await writer(result.status)
    return PassOutcome(aggregate(result.notices), result.retry_after, writer.writes, parked_on)


PARKED_QUIET_SECONDS = 10.0
"""How long a new resource waiting its turn on a busy badge may go without any status.

Under a burst most resources wait for their badge; writing their first status (node,
"0/1", observedGeneration) before their intent would be one more write each. They get
their intent and result writes like any other; one waiting longer than this (a stuck
badge) shows its status on its next pass."""


def _waits_quietly(
    obj: Mapping[str, Any],
    raw_status: Mapping[str, Any],
    writes: int,
    now: datetime,
) -> bool:
    """A young resource whose status was never written (its units all wait their turn)."""
    if writes or raw_status:
        return False
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    if not isinstance(created, str):
        return False
    try:
        born = datetime.fromisoformat(created)  # Python 3.11 reads the "Z"
    except ValueError:
        return False
    return (now - born).total_seconds() < PARKED_QUIET_SECONDS


async def _stall(
    writer: ConditionalStatusWriter,
    raw_status: dict[str, Any],
    generation: int,
    reason: str,
    message: str,
) -> PassOutcome:
    summary = Summary(False, False, True, reason, message)
    new = dict(raw_status)
    new["conditions"] = apply_summary(list(raw_status.get("conditions") or []), summary, generation)
    new["observedGeneration"] = generation
    if new != raw_status:
        await writer.write_raw(new)
    return PassOutcome([Notice("Warning", reason, message)], None, writer.writes)
