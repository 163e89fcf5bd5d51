"""The chain follower: one loop per operator that carries on-chain outcomes into status.

It reads the Atoma `db` module's events in order from a cursor kept in a ConfigMap,
maps each event's stack to the resources that mention it (the in-memory registry fed
by kopf's watch), reads that stack's ticket (the authoritative state) and rewrites the
affected entries. Everything written derives from the ticket, so replaying an event
after a restart changes nothing. When the epoch changes, stacks waiting for their
dispute period re-check. Cost grows with chain events, not with the number of resources.

Each tick has three independent steps, so one failing never stops the others: the epoch
check (releases suspect gas coins, re-checks open resources), the event read, and the
ticket reads; a tick in which the node answered also re-lists the gas pool once a minute
(its balance is a metric). Without a saved cursor the follower starts at the current checkpoint (or
`follower_start_checkpoint`) and reads the tickets of every open resource once for what
happened before. A cursor the node refuses (below its pruning floor, or invalid) restarts
it the same way. A node that does not serve ListEvents (RPC indexes disabled, the
default) degrades it to reading the tickets of open resources every tick.
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
from atoma_operator.sui.errors import ChainError, EventCursorRejected, EventsNotServed

if TYPE_CHECKING:
    from atoma_operator.runtime import Runtime

log = logging.getLogger(__name__)
CURSOR_KEY = "eventCursor"
FOLLOWED = {SettlementPhase.SETTLING, SettlementPhase.SETTLED}
EVENTS_PROBE_SECONDS = 300.0
"""While degraded, how often to ask ListEvents again (a node may enable its indexes)."""
GAS_LISTING_SECONDS = 60.0
"""How often the gas pool is re-listed, so its balance metric is current without a
submission (only in ticks whose epoch read succeeded: no extra calls while the node is
down)."""


class Follower:
    def __init__(self, runtime: Runtime, *, clock: Any = time.monotonic) -> None:
        self._rt = runtime
        self._clock = clock
        self._cursor: str | None = None
        self._saved_cursor: str | None = None
        self._loaded = False
        self._start_checkpoint: int | None = runtime.settings.follower_start_checkpoint
        self._sweep = False  # read every open resource's ticket on the next tick
        self._epoch: int | None = None
        self._last_tip = clock()
        settings = runtime.settings
        self._claimed = ClaimedStacksFeed(
            runtime.kube, settings.operator_namespace, [b.node_small_id for b in settings.badges]
        )
        self._degraded_since: float | None = None
        self._restarted = False  # the last event read ended in a cursor restart
        self._unrefreshed: set[int] = set()
        """Stacks whose events were read (the cursor moved past them) but whose tickets
        were not re-read yet: carried to the next tick until a refresh succeeds."""
        metrics.report_follower_lag(self.lag)

    def lag(self) -> float:
        """Seconds since the follower last reached the tip (read by /metrics at scrape
        time, so it grows while passes fail or hang)."""
        return float(self._clock() - self._last_tip)

    @property
    def degraded(self) -> bool:
        """True while the node does not serve ListEvents and tickets are read instead."""
        return self._degraded_since is not None

    async def run(self) -> None:
        """Poll until cancelled; failures back off instead of spinning."""
        settings = self._rt.settings
        delay = settings.follower_interval_seconds
        while True:
            try:
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
        """One pass; True when the event stream (or the degraded sweep) is at its tip.

        Raises the first failure after all steps ran, so `run` backs off and the lag
        gauge keeps growing while passes fail.
        """
        if not self._loaded:  # inside the loop: the apiserver may be down at start-up
            await self._load_cursor()
            await self._claimed.load()
            self._loaded = True
        failures: list[BaseException] = []
        stacks: set[int] = set(self._unrefreshed)
        epoch: int | None = None
        try:
            epoch = await self._check_epoch(stacks)
        except ChainError as exc:
            metrics.FOLLOWER_FAILURES.labels("epoch").inc()
            failures.append(exc)
        at_tip = True
        try:
            at_tip = await self._read_events(stacks)
        except ChainError as exc:
            metrics.FOLLOWER_FAILURES.labels("events").inc()
            failures.append(exc)
        sweep = self._sweep or self.degraded
        if sweep:  # bounded by open resources, not by all resources
            for key in self._rt.registry.open_resources():
                stacks |= self._rt.registry.stacks_of(key)
        self._unrefreshed = stacks
        if epoch is not None:
            try:
                for sid in sorted(stacks):
                    await self.refresh_stack(sid, epoch)
                    self._unrefreshed.discard(sid)
                if sweep:
                    self._sweep = False
            except ChainError as exc:
                metrics.FOLLOWER_FAILURES.labels("tickets").inc()
                failures.append(exc)
        if epoch is not None and not failures:  # the node answers: keep the pool current
            try:
                await self._rt.ctx.gas.refresh_if_older(GAS_LISTING_SECONDS)
            except ChainError as exc:
                metrics.FOLLOWER_FAILURES.labels("gas").inc()
                failures.append(exc)
        await self._claimed.flush()
        await self._save_cursor()
        if failures:
            raise failures[0]
        if at_tip:
            self._last_tip = self._clock()
        return at_tip

    async def _check_epoch(self, stacks: set[int]) -> int:
        """Read the epoch; on a change release suspect coins and re-check open resources."""
        rt = self._rt
        epoch = await rt.gateway.current_epoch()
        if epoch != self._epoch:
            if self._epoch is not None:
                rt.ctx.epoch_changed()
            self._epoch = epoch
            for key in rt.registry.open_resources():
                stacks |= rt.registry.stacks_of(key)
        return epoch

    async def _read_events(self, stacks: set[int]) -> bool:
        """One page of events into `stacks`; True at the tip. Handles a refused cursor
        and a node without ListEvents itself (no exception for either)."""
        rt = self._rt
        now = self._clock()
        if self._degraded_since is not None and now - self._degraded_since < EVENTS_PROBE_SECONDS:
            return True
        if self._cursor is None and self._start_checkpoint is None:
            _, latest = await rt.gateway.ledger_bounds()
            self._start_checkpoint = latest + 1  # the ticket sweep covers up to `latest`
            self._sweep = True  # what happened before the start point: read the tickets
            log.info("chain follower starts at checkpoint %d", self._start_checkpoint)
        origin = await rt.ctx.tickets.packages.type_origin()  # events carry the types' id
        try:
            page = await rt.gateway.list_events(
                event_type_prefix=event_type(origin, ""),
                after=self._cursor,
                limit=rt.settings.follower_page_size,
                start_checkpoint=self._start_checkpoint if self._cursor is None else None,
            )
        except EventsNotServed as exc:
            if self._degraded_since is None:
                log.warning(
                    "chain follower: the node does not serve ListEvents (%s); reading the "
                    "tickets of open resources every tick instead",
                    exc,
                )
            self._degraded_since = now
            metrics.FOLLOWER_EVENT_STREAM.set(0)
            return True
        except EventCursorRejected as exc:
            again = self._restarted
            await self._restart(exc)
            # retry at once from the new start point, but never spin on a node that
            # keeps refusing: a second refusal in a row waits for the poll interval
            return again
        self._restarted = False
        if self._degraded_since is not None:
            log.info("chain follower: the node serves ListEvents again")
            self._degraded_since = None
            self._sweep = True  # events missed while degraded
        metrics.FOLLOWER_EVENT_STREAM.set(1)
        for event in page.events:
            metrics.FOLLOWER_EVENTS.labels(event.name).inc()
            try:
                parsed = parse_event(event, package_id=origin)
            except EventParseError as exc:
                log.warning(
                    "skipping malformed %s event in %s: %s", event.name, event.tx_digest, exc
                )
                continue
            self._claimed.observe(parsed)
            if parsed is None:
                continue
            concerned = rt.registry.resources_for(parsed.stack_small_id)
            # Our own transaction, whose effects its pass already applied to the one
            # resource that mentions the stack: nothing to refresh. (An attestation's
            # StackSettlement is another resource: refreshed.)
            if concerned and concerned != {rt.ctx.holds.resolved_for(event.tx_digest)}:
                stacks.add(parsed.stack_small_id)
        if page.next_cursor is not None:
            self._cursor = page.next_cursor
            self._start_checkpoint = None
        return page.at_tip

    async def _restart(self, exc: EventCursorRejected) -> None:
        """Drop a cursor the node will never accept: start again at the current checkpoint
        and read the tickets of every open resource for what happened in between."""
        metrics.FOLLOWER_CURSOR_RESETS.labels(exc.reason).inc()
        message = (
            f"the node refused the event cursor ({exc}); restarting from the current "
            "checkpoint and re-reading the tickets of open resources"
        )
        log.warning("chain follower: %s", message)
        self._restarted = True
        self._cursor = None
        self._start_checkpoint = None  # an explicit start below the floor is refused too
        self._sweep = True
        s = self._rt.settings
        state = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": s.state_configmap, "namespace": s.operator_namespace},
        }
        await self._rt.kube.post_event(
            state, type_="Warning", reason="EventCursorReset", message=message
        )

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
        self._cursor = self._saved_cursor = (data or {}).get(CURSOR_KEY) or None

    async def _save_cursor(self) -> None:
        if self._cursor == self._saved_cursor:
            return
        s = self._rt.settings
        # "" clears a refused cursor, so a restart does not try it again
        await self._rt.kube.put_config_map(
            s.operator_namespace, s.state_configmap, {CURSOR_KEY: self._cursor or ""}
        )
        self._saved_cursor = self._cursor
