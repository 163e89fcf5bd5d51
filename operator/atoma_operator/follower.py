"""The chain follower: one loop per operator that carries on-chain outcomes into status.

It reads the Atoma `db` module's events in order from a cursor kept in a ConfigMap,
maps each event's stack to the resources that mention it (the in-memory registry fed
by kopf's watch), reads that stack's ticket (the authoritative state) and rewrites the
affected entries. Everything written derives from the ticket, so replaying an event
after a restart changes nothing. When the epoch changes, stacks waiting for their
dispute period re-check. Cost grows with chain events, not with the number of resources.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from atoma_operator import metrics
from atoma_operator.atoma.events import EventParseError, event_type, parse_event
from atoma_operator.atoma.ticket import SettlementTicket, TicketParseError
from atoma_operator.claimed import ClaimedStacksFeed
from atoma_operator.kube import Conflict, NotFound, ObjectKey
from atoma_operator.reconcile.attestation import conclude as conclude_attestation
from atoma_operator.reconcile.settlement import apply_ticket
from atoma_operator.reconcile.settlement import conclude as conclude_settlement
from atoma_operator.resources.attestation import AttestationPhase, AttestationStatus
from atoma_operator.resources.stack_settlement import SettlementPhase, StackSettlementStatus
from atoma_operator.sui.errors import ChainError

if TYPE_CHECKING:
    from atoma_operator.runtime import Runtime

log = logging.getLogger(__name__)
CURSOR_KEY = "eventCursor"
FOLLOWED = {SettlementPhase.SETTLING, SettlementPhase.SETTLED}


class Follower:
    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        settings = runtime.settings
        assert settings.package_id is not None
        self._prefix = event_type(settings.package_id, "")
        self._cursor: str | None = None
        self._saved_cursor: str | None = None
        self._epoch: int | None = None
        self._last_tip = time.monotonic()
        self._claimed = ClaimedStacksFeed(
            runtime.kube, settings.operator_namespace, [b.node_small_id for b in settings.badges]
        )

    async def run(self) -> None:
        """Poll until cancelled; failures back off instead of spinning."""
        settings = self._rt.settings
        delay = settings.follower_interval_seconds
        loaded = False
        while True:
            try:
                if not loaded:  # inside the loop: the apiserver may be down at start-up
                    await self._load_cursor()
                    await self._claimed.load()
                    loaded = True
                at_tip = await self.tick()
                delay = settings.follower_interval_seconds
                if not at_tip:
                    continue
            except asyncio.CancelledError:
                raise
            except ChainError as exc:
                log.warning("chain follower: %s; retrying in %.1fs", exc, delay)
                delay = min(delay * 2, settings.retry_max_seconds)
            except Exception:
                log.exception("chain follower pass failed; retrying in %.1fs", delay)
                delay = min(delay * 2, settings.retry_max_seconds)
            # A poll interval, not synchronisation: the chain offers no push to wait on here.
            await asyncio.sleep(delay)

    async def tick(self) -> bool:
        """Read one page of events and apply it; True when the stream is at its tip."""
        rt = self._rt
        page = await rt.gateway.list_events(
            event_type_prefix=self._prefix, after=self._cursor, limit=rt.settings.follower_page_size
        )
        stacks: set[int] = set()
        for event in page.events:
            metrics.FOLLOWER_EVENTS.labels(event.name).inc()
            try:
                parsed = parse_event(event, package_id=rt.settings.package_id)
            except EventParseError as exc:
                log.warning(
                    "skipping malformed %s event in %s: %s", event.name, event.tx_digest, exc
                )
                continue
            self._claimed.observe(parsed)
            if parsed is not None and rt.registry.resources_for(parsed.stack_small_id):
                stacks.add(parsed.stack_small_id)
        epoch = await rt.gateway.current_epoch()
        if epoch != self._epoch:
            if self._epoch is not None:
                rt.ctx.epoch_changed()
            self._epoch = epoch
            for key in rt.registry.open_resources():
                stacks |= rt.registry.stacks_of(key)
        for sid in sorted(stacks):
            await self.refresh_stack(sid, epoch)
        if page.next_cursor is not None:
            self._cursor = page.next_cursor
        await self._claimed.flush()
        await self._save_cursor()
        now = time.monotonic()
        if page.at_tip:
            self._last_tip = now
        metrics.FOLLOWER_LAG.set(now - self._last_tip)
        self._update_gauges()
        return page.at_tip

    async def refresh_stack(self, sid: int, epoch: int) -> None:
        """Re-derive every followed entry of stack `sid` from its ticket."""
        try:
            ticket = await self._rt.ctx.tickets.read(sid)
        except TicketParseError as exc:
            log.warning("stack %d: unreadable ticket: %s", sid, exc)
            return
        if ticket is None:
            return
        for key in self._rt.registry.resources_for(sid):
            for _ in range(3):
                try:
                    await self._update(key, sid, ticket, epoch)
                    break
                except Conflict:
                    continue
                except NotFound:
                    self._rt.registry.forget(key)
                    break

    async def _update(self, key: ObjectKey, sid: int, ticket: SettlementTicket, epoch: int) -> None:
        obj = await self._rt.kube.get(key)
        meta = obj["metadata"]
        generation = int(meta.get("generation") or 1)
        raw_status: dict[str, Any] = obj.get("status") or {}
        if key.kind == "StackSettlement":
            status = StackSettlementStatus.model_validate(raw_status)
            entry = status.stack(sid)
            if entry is None or entry.phase not in FOLLOWED or entry.pending is not None:
                return
            before = entry.phase
            apply_ticket(entry, ticket, epoch)
            conclude_settlement(status, generation)
            new = status.to_k8s()
            if entry.phase is not before:
                await self._notice(obj, entry.phase.value, sid)
        else:
            astatus = AttestationStatus.model_validate(raw_status)
            changed = False
            for a in astatus.attestations:
                if a.stack_small_id != sid or a.phase is not AttestationPhase.ATTESTED:
                    continue
                if ticket.is_in_dispute:
                    a.phase, changed = AttestationPhase.DISPUTED, True
                elif ticket.received_attestations >= ticket.required_attestations:
                    a.phase, changed = AttestationPhase.SETTLED, True
            if not changed:
                return
            conclude_attestation(astatus, [], generation)
            new = astatus.to_k8s()
        if new != raw_status:
            await self._rt.kube.patch_status(key, new, meta["resourceVersion"])

    async def _notice(self, obj: dict[str, Any], phase: str, sid: int) -> None:
        if phase == "Disputed":
            await self._rt.kube.post_event(
                obj, type_="Warning", reason="Disputed", message=f"stack {sid} is in dispute"
            )
        elif phase == "Settled":
            await self._rt.kube.post_event(
                obj, type_="Normal", reason="Settled", message=f"stack {sid} settled on chain"
            )

    async def _load_cursor(self) -> None:
        s = self._rt.settings
        data = await self._rt.kube.get_config_map(s.operator_namespace, s.state_configmap)
        self._cursor = self._saved_cursor = (data or {}).get(CURSOR_KEY)

    async def _save_cursor(self) -> None:
        if self._cursor is None or self._cursor == self._saved_cursor:
            return
        s = self._rt.settings
        await self._rt.kube.put_config_map(
            s.operator_namespace, s.state_configmap, {CURSOR_KEY: self._cursor}
        )
        self._saved_cursor = self._cursor

    def _update_gauges(self) -> None:
        for kind, counts in self._rt.registry.condition_counts().items():
            for condition, count in counts.items():
                metrics.RESOURCES_BY_CONDITION.labels(kind, condition).set(count)
