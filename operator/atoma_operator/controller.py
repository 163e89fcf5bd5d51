"""From watch events to reconcile passes: what kopf's on.create/on.resume did, without
writing anything into the objects.

A resource needs a pass when this process sees it open (not final, or with a recorded
intent) for the first time — a creation, or every open resource after a restart — or
when its spec changed (`metadata.generation` ahead of what status says was observed).
Label and annotation edits, and the echoes of our own status writes, start nothing.
The pass result says when to come back (`retry_after`) and what the unit waits for
(`waiting_on`: a node badge or the gas pool), so a waiting resource is woken as soon as
its badge is released instead of polling with backoff.

Per-object memory exists only for open resources; a final one costs nothing here.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from atoma_operator.kube import PLURALS, Conflict, NotFound, ObjectKey
from atoma_operator.reconcile.run import run_pass
from atoma_operator.reconcile.units import GAS_POOL
from atoma_operator.registry import has_pending, is_final
from atoma_operator.runtime import Runtime
from atoma_operator.watch import Informer
from atoma_operator.workqueue import WorkQueue

log = logging.getLogger(__name__)

API_RETRY_SECONDS = 2.0
CONFLICT_RETRY_SECONDS = 0.2


def observed_generation(body: dict[str, Any]) -> int:
    """What status says was observed: its own field, else the conditions' (older writes)."""
    status = body.get("status") or {}
    seen = status.get("observedGeneration")
    if seen is not None:
        return int(seen)
    gens = [int(c.get("observedGeneration") or 0) for c in status.get("conditions") or []]
    return max(gens, default=0)


def needs_pass(body: dict[str, Any], *, first_seen: bool) -> bool:
    """Whether an event about an open resource should start a pass."""
    if first_seen:
        return True
    generation = int((body.get("metadata") or {}).get("generation") or 1)
    return observed_generation(body) < generation


def is_done(body: dict[str, Any]) -> bool:
    return is_final(body) and not has_pending(body)


class Controller:
    def __init__(self, runtime: Runtime, namespaces: list[str] | None, *, workers: int) -> None:
        self.runtime = runtime
        self.namespaces: list[str | None] = list(namespaces) if namespaces else [None]
        self.queue: WorkQueue[ObjectKey] = WorkQueue(self._work, workers=workers)
        self._open: set[ObjectKey] = set()  # open resources this process has seen
        self._bodies: dict[ObjectKey, dict[str, Any]] = {}  # fresh bodies for queued keys
        self._retries: dict[ObjectKey, int] = {}
        self._informers: list[Informer] = []
        runtime.ctx.holds.on_release_of(self._released)
        runtime.ctx.gas.on_available(lambda: self.queue.wake(GAS_POOL))

    async def start(self) -> None:
        """List everything first (holds from recorded intents are known before any pass
        may build a transaction), then start the workers."""
        for kind, plural in PLURALS.items():
            for namespace in self.namespaces:
                self._informers.append(
                    Informer(
                        self.runtime.kube.http,
                        plural,
                        namespace,
                        on_event=self._handler(kind),
                        on_begin=self._beginner(kind, namespace),
                        on_listed=self._lister(kind, namespace),
                    )
                )
        for informer in self._informers:
            informer.start()
        await asyncio.gather(*(i.listed.wait() for i in self._informers))
        log.info("listed %d open resources; reconciling", len(self._open))
        self.queue.start()

    async def stop(self) -> None:
        for informer in self._informers:
            await informer.stop()
        await self.queue.stop()

    # -- watch events ------------------------------------------------------------------

    def _handler(self, kind: str) -> Any:
        async def on_event(event_type: str, body: dict[str, Any]) -> None:
            try:
                self.observe(kind, event_type, body)
            except Exception:  # one bad object must not stop the watch
                log.exception("%s event could not be handled", kind)

        return on_event

    def _beginner(self, kind: str, namespace: str | None) -> Any:
        async def on_begin() -> None:
            self.runtime.registry.begin_listing(kind, namespace)

        return on_begin

    def _lister(self, kind: str, namespace: str | None) -> Any:
        async def on_listed() -> None:
            for key in self.runtime.registry.listed(kind, namespace):
                self._forget(key, registry=False)  # deleted while the watch was down

        return on_listed

    def observe(self, kind: str, event_type: str, body: dict[str, Any]) -> None:
        meta = body.get("metadata") or {}
        key = ObjectKey(kind, meta.get("namespace", ""), meta.get("name", ""))
        self.runtime.registry.observe(kind, event_type, body)
        if event_type == "DELETED":
            self._forget(key, registry=False)
            return
        if is_done(body):
            self._open.discard(key)
            self._bodies.pop(key, None)
            self._retries.pop(key, None)
            self.queue.forget(key)
            return
        first = key not in self._open
        self._open.add(key)
        if key in self._bodies:
            self._bodies[key] = body  # a newer copy for the pass to come (a label, ...)
        if needs_pass(body, first_seen=first):
            if not self.queue.is_active(key):
                self._bodies[key] = body
            self.queue.add(key)

    def _forget(self, key: ObjectKey, *, registry: bool = True) -> None:
        if registry:
            self.runtime.registry.forget(key)
        self._open.discard(key)
        self._bodies.pop(key, None)
        self._retries.pop(key, None)
        self.queue.forget(key)

    def _released(self, objects: frozenset[str]) -> None:
        for oid in objects:
            self.queue.wake(oid)

    # -- one pass ----------------------------------------------------------------------

    async def _work(self, key: ObjectKey) -> None:
        try:
            await self._pass(key)
        except Exception:  # never lose the worker; come back with backoff
            log.exception("%s %s/%s: pass failed", key.kind, key.namespace, key.name)
            self._again(key, self._backoff(key))
        finally:
            self._hand_over()

    def _hand_over(self) -> None:
        """A badge nobody holds or queues for while resources wait parked for it (the
        woken one did not take it, e.g. it was deleted): wake the next instead of waiting
        for the safety-net timer. (Each release already wakes one: no wake storms.)"""
        ctx = self.runtime.ctx
        for thing in self.queue.parked_things():
            if not isinstance(thing, str) or thing == GAS_POOL:
                continue
            if ctx.holds.holder(thing) is None and not ctx.badge_lines.get(thing):
                self.queue.wake(thing)

    async def _pass(self, key: ObjectKey) -> None:
        runtime = self.runtime
        body = self._bodies.pop(key, None)
        retries = self._retries.get(key, 0)
        if body is not None and is_done(body):
            return
        if body is None:
            try:
                body = await runtime.kube.get(key)
            except NotFound:
                self._forget(key)
                return
            except (ApiException, OSError, urllib3.exceptions.HTTPError) as exc:
                log.info("%s %s/%s: Kubernetes API unavailable (%s)", *_k(key), exc)
                self._again(key, API_RETRY_SECONDS)
                return
            if is_done(body):
                return
        obj = copy.deepcopy(body)
        try:
            outcome = await run_pass(runtime.ctx, runtime.kube, key, obj, waiting_passes=retries)
        except NotFound:
            self._forget(key)  # its unresolved intents are orphans (reconcile.holds)
            return
        except Conflict:
            self._again(key, CONFLICT_RETRY_SECONDS)
            return
        except (ApiException, OSError, urllib3.exceptions.HTTPError) as exc:
            log.info("%s %s/%s: Kubernetes API unavailable (%s)", *_k(key), exc)
            self._again(key, API_RETRY_SECONDS)
            return
        for notice in outcome.notices:
            if notice.type == "Normal" and runtime.settings.events == "warnings":
                continue
            await runtime.kube.post_event(
                obj, type_=notice.type, reason=notice.reason, message=notice.message
            )
        if outcome.retry_after is None:
            self._retries.pop(key, None)
            return
        self._retries[key] = retries + 1
        if outcome.waiting_on:
            if outcome.writes == 0:
                # Nothing written: the body read is still current unless the watch brings
                # a newer one, so the wake-up pass needs no GET (a stale copy would only
                # meet a 409 on its conditional write and be read again).
                self._bodies.setdefault(key, body)
            self.queue.park(key, outcome.waiting_on)
        self.queue.add(key, max(0.05, outcome.retry_after))

    def _again(self, key: ObjectKey, delay: float) -> None:
        self._retries[key] = self._retries.get(key, 0) + 1
        self.queue.add(key, delay)

    def _backoff(self, key: ObjectKey) -> float:
        retries = self._retries.get(key, 0)
        return float(min(self.runtime.settings.retry_max_seconds, 2.0 * 2 ** min(retries, 8)))


def _k(key: ObjectKey) -> tuple[str, str, str]:
    return (key.kind, key.namespace, key.name)
