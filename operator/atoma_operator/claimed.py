"""Claimed stacks of every badge the operator holds: the seed's `GET /claimed_stacks`.

Fed by the chain follower with every parsed Atoma event (`ClaimedStacks.observe`), so
stacks settled outside this operator appear too. A ticket is kept when its selected node
or one of its requested attestation nodes is one of the operator's badges.

Representation (see README "Claimed stacks"): one summary per badge, holding the seed's
fields for the most recent `retention` tickets that involve that badge (as the selected
node or as a requested attestation node); it is written as a ConfigMap labelled
`atoma.network/node=<id>` (`kubectl get cm -l atoma.network/node=7`), one write per
changed badge per follower page. Memory, write size and Prometheus series are bounded by
badges x retention and badges x 3 statuses, however many tickets the chain holds
(100,000 tickets cost the same as `retention`).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from atoma_operator import metrics
from atoma_operator.atoma.events import (
    AtomaEvent,
    NewStackSettlementAttestationEvent,
    StackAttestationDisputeEvent,
    StackSettlementTicketClaimedEvent,
    StackSettlementTicketEvent,
    StackTrySettleEvent,
)

if TYPE_CHECKING:
    from atoma_operator.kube import Kube

NODE_LABEL: Final = "atoma.network/node"
COMPONENT_LABEL: Final = "app.kubernetes.io/component"
COMPONENT: Final = "claimed-stacks"
DATA_KEY: Final = "claimed_stacks.json"
DEFAULT_RETENTION: Final = 1000
"""Tickets kept per node: ~300 bytes each in JSON, so a summary stays far below 1 MiB."""

CLAIMED_STACKS = metrics.CLAIMED_STACKS
STATUSES: Final = ("Pending", "Complete", "Failed")


def summary_name(node: int) -> str:
    """The ConfigMap of one badge's summary (the chart's RBAC names the same)."""
    return f"atoma-claimed-stacks-node-{node}"


PutSummary = Callable[[str, dict[str, str], dict[str, str]], Awaitable[None]]
"""(ConfigMap name, labels, data) -> None: create or replace the node's summary."""


@dataclass
class ClaimedStack:
    """One ticket, with the seed's field names and meanings."""

    stack_small_id: int
    selected_node_id: int
    num_claimed_compute_units: int
    settlement_time: datetime
    requested_attestation_nodes: list[int]
    attestation_status: str = "Pending"
    attested_nodes: set[int] = field(default_factory=set)
    settlement_complete: bool = False
    claimed: bool = False

    @property
    def required_attestations(self) -> int:
        return len(self.requested_attestation_nodes)

    def to_record(self) -> dict[str, Any]:
        """The seed's fields plus what a restart needs to resume counting exactly."""
        return {
            **self.to_seed(),
            "attested_nodes": sorted(self.attested_nodes),
            "claimed": self.claimed,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ClaimedStack:
        return cls(
            stack_small_id=int(record["stack_small_id"]),
            selected_node_id=int(record["selected_node_id"]),
            num_claimed_compute_units=int(record["num_claimed_compute_units"]),
            settlement_time=datetime.fromisoformat(str(record["settlement_time"])),
            requested_attestation_nodes=[
                int(n) for n in json.loads(record["requested_attestation_nodes"])
            ],
            attestation_status=str(record["attestation_status"]),
            attested_nodes={int(n) for n in record.get("attested_nodes") or ()},
            settlement_complete=bool(record["settlement_complete"]),
            claimed=bool(record.get("claimed", False)),
        )

    def to_seed(self) -> dict[str, Any]:
        """The seed's JSON object (requested_attestation_nodes is a JSON-encoded string)."""
        return {
            "stack_small_id": self.stack_small_id,
            "stack_id": str(self.stack_small_id),
            "selected_node_id": self.selected_node_id,
            "num_claimed_compute_units": self.num_claimed_compute_units,
            "settlement_time": self.settlement_time.isoformat().replace("+00:00", "Z"),
            "attestation_status": self.attestation_status,
            "requested_attestation_nodes": json.dumps(self.requested_attestation_nodes),
            "received_attestations": len(self.attested_nodes),
            "required_attestations": self.required_attestations,
            "settlement_complete": self.settlement_complete,
        }


class ClaimedStacks:
    """The bounded per-node view; `observe` is the follower's one call per event."""

    def __init__(self, badges: Iterable[int], *, retention: int = DEFAULT_RETENTION) -> None:
        if retention < 1:
            raise ValueError("retention must be at least 1")
        self._badges = set(badges)
        self._retention = retention
        self._stacks: dict[int, ClaimedStack] = {}
        self._by_badge: dict[int, OrderedDict[int, None]] = {b: OrderedDict() for b in badges}
        self._dirty: set[int] = set()

    def observe(self, event: AtomaEvent, *, at: datetime) -> None:
        """Apply one parsed event; events of tickets that involve no badge are ignored."""
        if isinstance(event, StackTrySettleEvent):
            involved = {event.selected_node_id, *event.requested_attestation_nodes}
            if not involved & self._badges or event.stack_small_id in self._stacks:
                return  # not ours, or a replayed event (a stack is settled once)
            self._put(
                ClaimedStack(
                    stack_small_id=event.stack_small_id,
                    selected_node_id=event.selected_node_id,
                    num_claimed_compute_units=event.num_claimed_compute_units,
                    settlement_time=at,
                    requested_attestation_nodes=list(event.requested_attestation_nodes),
                )
            )
            return
        stack = self._stacks.get(event.stack_small_id)
        if stack is None:
            return
        if isinstance(event, NewStackSettlementAttestationEvent):
            stack.attested_nodes.add(event.attestation_node_id)
        elif isinstance(event, StackSettlementTicketEvent):
            stack.attested_nodes |= set(event.requested_attestation_nodes)
            stack.attestation_status = "Complete"
            stack.settlement_complete = True
        elif isinstance(event, StackAttestationDisputeEvent):
            stack.attestation_status = "Failed"
            stack.settlement_complete = False
        elif isinstance(event, StackSettlementTicketClaimedEvent):
            stack.claimed = True
        self._dirty |= self._badges_of(stack)

    def _badges_of(self, stack: ClaimedStack) -> set[int]:
        return {stack.selected_node_id, *stack.requested_attestation_nodes} & self._badges

    def _put(self, stack: ClaimedStack) -> None:
        sid = stack.stack_small_id
        self._stacks[sid] = stack
        for badge in self._badges_of(stack):
            kept = self._by_badge[badge]
            kept.pop(sid, None)
            kept[sid] = None
            while len(kept) > self._retention:
                evicted, _ = kept.popitem(last=False)
                if not any(evicted in k for k in self._by_badge.values()):
                    del self._stacks[evicted]
            self._dirty.add(badge)

    def stacks(self, node: int | None = None) -> list[ClaimedStack]:
        """Retained stacks, oldest first: of one badge when given, else of every badge."""
        if node is not None:
            return [self._stacks[sid] for sid in self._by_badge.get(node, {})]
        return sorted(self._stacks.values(), key=lambda s: s.settlement_time)

    def seed_json(self, node: int | None = None) -> list[dict[str, Any]]:
        return [s.to_seed() for s in self.stacks(node)]

    def restore(self, records: Iterable[dict[str, Any]]) -> int:
        """Reload summaries written before a restart (the follower resumes from its
        cursor, so without this the next write would drop the older tickets).
        Returns the number of distinct stacks restored."""
        unique = {int(r["stack_small_id"]): r for r in records}  # one per badge involved
        stacks = sorted(
            (ClaimedStack.from_record(r) for r in unique.values()),
            key=lambda s: s.settlement_time,
        )
        for stack in stacks:
            self._put(stack)
        self._dirty.clear()
        return len(stacks)

    def update_metrics(self) -> None:
        for node in self._by_badge:
            counts = dict.fromkeys(STATUSES, 0)
            for s in self.stacks(node):
                counts[s.attestation_status] += 1
            for status, count in counts.items():
                CLAIMED_STACKS.labels(str(node), status).set(count)

    @property
    def badges(self) -> list[int]:
        return sorted(self._by_badge)

    async def flush(self, put: PutSummary) -> int:
        """Write the summary of every node that changed since the last flush."""
        dirty, self._dirty = sorted(self._dirty), set()
        for i, node in enumerate(dirty):
            labels = {NODE_LABEL: str(node), COMPONENT_LABEL: COMPONENT}
            records = [s.to_record() for s in self.stacks(node)]
            data = {DATA_KEY: json.dumps(records, separators=(",", ":"))}
            try:
                await put(summary_name(node), labels, data)
            except BaseException:
                self._dirty.update(dirty[i:])  # written next time
                raise
        self.update_metrics()
        return len(dirty)


SEED_FIELDS: Final = (
    "stack_small_id",
    "stack_id",
    "selected_node_id",
    "num_claimed_compute_units",
    "settlement_time",
    "attestation_status",
    "requested_attestation_nodes",
    "received_attestations",
    "required_attestations",
    "settlement_complete",
)


def seed_view(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record as the seed's claimed stack (exactly its fields)."""
    return {k: record[k] for k in SEED_FIELDS}


async def load_records(kube: Kube, namespace: str, badges: Iterable[int]) -> list[dict[str, Any]]:
    """The stored records of these badges, for `ClaimedStacks.restore` at start-up.

    Read by name (the operator's RBAC grants get on its badges' summaries only).
    """
    records: list[dict[str, Any]] = []
    for badge in badges:
        data = await kube.get_config_map(namespace, summary_name(badge))
        records += json.loads((data or {}).get(DATA_KEY) or "[]")
    return records


def kube_writer(kube: Kube, namespace: str) -> PutSummary:
    """Summaries as ConfigMaps in the operator's namespace (created or merge-patched)."""

    async def put(name: str, labels: dict[str, str], data: dict[str, str]) -> None:
        await kube.put_config_map(namespace, name, data, labels=labels)

    return put


class ClaimedStacksFeed:
    """What the follower holds: the view, restored once, written after each page.

    The follower's hook is three calls: `await feed.load()` where it loads its cursor,
    `feed.observe(parsed)` for each parsed event, `await feed.flush()` after the page.
    """

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        badges: Iterable[int],
        *,
        retention: int = DEFAULT_RETENTION,
    ) -> None:
        self.view = ClaimedStacks(badges, retention=retention)
        self._kube = kube
        self._namespace = namespace
        self._put = kube_writer(kube, namespace)

    async def load(self) -> int:
        records = await load_records(self._kube, self._namespace, self.view.badges)
        return self.view.restore(records)

    def observe(self, event: AtomaEvent | None) -> None:
        if event is not None:
            self.view.observe(event, at=datetime.now(UTC).replace(microsecond=0))

    async def flush(self) -> int:
        return await self.view.flush(self._put)
