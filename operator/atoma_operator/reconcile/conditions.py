"""Condition helpers following the Kubernetes API conventions and kstatus.

`Ready` is always present; `Reconciling=True` while work is under way; `Stalled=True`
when nothing will change without a new resource. kstatus, `kubectl wait`, Flux and
Argo CD read exactly these, so every status write goes through `summarise`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
SETTLED = "Settled"


@dataclass(frozen=True)
class Summary:
    """The resource-level verdict a state machine reaches after a pass."""

    ready: bool
    reconciling: bool
    stalled: bool
    reason: str  # CamelCase
    message: str
    settled: bool | None = None  # only StackSettlement follows settlement to the end


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def set_condition(
    conditions: list[dict[str, Any]],
    type_: str,
    status: bool,
    reason: str,
    message: str,
    generation: int,
    *,
    now: str | None = None,
) -> list[dict[str, Any]]:
    """Return a new list with `type_` set; lastTransitionTime moves only when status changes."""
    status_str = "True" if status else "False"
    out: list[dict[str, Any]] = []
    found = False
    for cond in conditions:
        if cond.get("type") != type_:
            out.append(dict(cond))
            continue
        found = True
        changed = cond.get("status") != status_str
        out.append(
            {
                "type": type_,
                "status": status_str,
                "reason": reason,
                "message": message[:1024],
                "observedGeneration": generation,
                "lastTransitionTime": (now or now_iso())
                if changed
                else cond.get("lastTransitionTime") or now or now_iso(),
            }
        )
    if not found:
        out.append(
            {
                "type": type_,
                "status": status_str,
                "reason": reason,
                "message": message[:1024],
                "observedGeneration": generation,
                "lastTransitionTime": now or now_iso(),
            }
        )
    return out


def apply_summary(
    conditions: list[dict[str, Any]], summary: Summary, generation: int, *, now: str | None = None
) -> list[dict[str, Any]]:
    """Write Ready/Reconciling/Stalled (and Settled when known) from one summary."""
    conds = set_condition(
        conditions, READY, summary.ready, summary.reason, summary.message, generation, now=now
    )
    conds = set_condition(
        conds,
        RECONCILING,
        summary.reconciling,
        summary.reason if summary.reconciling else "Idle",
        summary.message if summary.reconciling else "",
        generation,
        now=now,
    )
    conds = set_condition(
        conds,
        STALLED,
        summary.stalled,
        summary.reason if summary.stalled else "NotStalled",
        summary.message if summary.stalled else "",
        generation,
        now=now,
    )
    if summary.settled is not None:
        conds = set_condition(
            conds,
            SETTLED,
            summary.settled,
            "SettlementComplete" if summary.settled else "AwaitingSettlement",
            "all stacks settled on chain"
            if summary.settled
            else "waiting for attestations and the end of the dispute period",
            generation,
            now=now,
        )
    return conds


def condition_status(conditions: list[dict[str, Any]], type_: str) -> str | None:
    return next((c.get("status") for c in conditions if c.get("type") == type_), None)
