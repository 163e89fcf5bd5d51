"""List+watch of one kind in one namespace (or all), as client-go's reflector does it.

Why not kopf's watch: kopf keeps a memory per object, lists everything in one response
and, for change-detecting handlers, writes progress and a copy of the spec into every
object. Here a list is read in pages (memory bounded by a page, not by the number of
resources), every event body is handed over once and then dropped, and nothing is
ever written.

It runs on the event loop (aiohttp, `kubehttp`): each event is awaited before the next
line is read, which is the back-pressure, and no event crosses a thread (handing each
one from a watch thread to the loop cost a tenth of the operator's CPU per stack).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from kubernetes.client.exceptions import ApiException

from atoma_operator.kubehttp import KubeHttp, collection_path
from atoma_operator.resources.common import GROUP, VERSION

log = logging.getLogger(__name__)

PAGE_SIZE = 500
WATCH_SECONDS = 240  # the apiserver ends a watch after this; we then resume from the last rv
RETRY_SECONDS = 2.0

OnEvent = Callable[[str, dict[str, Any]], Awaitable[None]]
"""(type, body): ADDED / MODIFIED / DELETED; a listing hands every item as ADDED."""
OnBegin = Callable[[], Awaitable[None]]
"""A complete listing starts (the first, or a re-list after 410)."""
OnListed = Callable[[], Awaitable[None]]
"""A complete listing (a first list, a re-list) ended; its items were handed as ADDED."""


class Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class Informer:
    """One kind (plural) in one namespace (None: cluster-wide)."""

    def __init__(
        self,
        http: KubeHttp,
        plural: str,
        namespace: str | None,
        *,
        on_event: OnEvent,
        on_begin: OnBegin,
        on_listed: OnListed,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._http = http
        self.plural = plural
        self.namespace = namespace
        self._path = collection_path(GROUP, VERSION, namespace, plural)
        self._on_event = on_event
        self._on_begin = on_begin
        self._on_listed = on_listed
        self._page_size = page_size
        self._task: asyncio.Task[None] | None = None
        self.listed = asyncio.Event()  # set after the first complete listing

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"atoma-watch-{self._where()}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        rv: str | None = None
        while True:
            try:
                if rv is None:
                    rv = await self._list()
                    self.listed.set()
                rv = await self._watch(rv)
            except Gone:
                log.info("%s watch expired (410); listing again", self._where())
                rv = None
            except (ApiException, OSError, ValueError) as exc:
                log.warning("%s watch failed: %s; retrying", self._where(), _short(exc))
                await asyncio.sleep(RETRY_SECONDS)
            except Exception:  # a bug must not end the watch for good: list again
                log.exception("%s watch broke; listing again", self._where())
                rv = None
                await asyncio.sleep(RETRY_SECONDS)

    async def _list(self) -> str:
        token: str | None = None
        await self._on_begin()
        kind = self._kind()
        while True:
            params = {"limit": str(self._page_size)}
            if token:
                params["continue"] = token
            try:
                page = await self._http.request("GET", self._path + "?" + urlencode(params))
            except ApiException as exc:
                if exc.status == 410 and token:  # the continue token expired: start over
                    token = None
                    await self._on_begin()
                    continue
                raise
            for item in page.get("items") or []:
                item.setdefault("kind", kind)
                item.setdefault("apiVersion", f"{GROUP}/{VERSION}")
                await self._on_event("ADDED", item)
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                await self._on_listed()
                return str(meta.get("resourceVersion") or "")

    async def _watch(self, rv: str) -> str:
        params = {
            "watch": "true",
            "resourceVersion": rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        async for line in self._http.lines(self._path, params, read_timeout=WATCH_SECONDS + 30):
            event = json.loads(line)
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise Gone()
                raise ValueError(f"watch error: {obj.get('message') or obj}")
            rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                await self._on_event(kind, obj)
        return rv

    def _kind(self) -> str:
        from atoma_operator.kube import PLURALS

        return next(k for k, p in PLURALS.items() if p == self.plural)

    def _where(self) -> str:
        return f"{self.plural} in {self.namespace or 'all namespaces'}"


def _short(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"
