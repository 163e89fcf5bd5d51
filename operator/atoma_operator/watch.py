"""List+watch of one kind in one namespace (or all), as client-go's reflector does it.

Why not kopf's watch: kopf keeps a memory per object, lists everything in one response
and, for change-detecting handlers, writes progress and a copy of the spec into every
object. Here a list is read in pages (memory bounded by a page, not by the number of
resources), every event body is handed over once and then dropped, and nothing is
ever written.

The kubernetes client is synchronous, so the loop runs in a thread; each page and each
event is handed to the asyncio loop and waited for, which is the back-pressure: the
thread never runs ahead of what the loop has taken in.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import urllib3
from kubernetes.client import ApiClient, CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from atoma_operator.resources.common import GROUP, VERSION

log = logging.getLogger(__name__)

PAGE_SIZE = 500
WATCH_SECONDS = 240  # the apiserver ends a watch after this; we then resume from the last rv
RETRY_SECONDS = 2.0

OnEvent = Callable[[str, dict[str, Any]], Awaitable[None]]
"""(type, body): ADDED / MODIFIED / DELETED; a listing hands every item as ADDED."""
OnBegin = Callable[[], Awaitable[None]]
"""A complete listing starts (the first, or a re-list after 410)."""
OnListed = Callable[[set[tuple[str, str]]], Awaitable[None]]
"""(namespace, name) of everything in a complete listing (a first list, a re-list)."""


class Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class Informer:
    """One kind (plural) in one namespace (None: cluster-wide)."""

    def __init__(
        self,
        api_client: ApiClient,
        plural: str,
        namespace: str | None,
        *,
        on_event: OnEvent,
        on_begin: OnBegin,
        on_listed: OnListed,
        loop: asyncio.AbstractEventLoop,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._api = CustomObjectsApi(api_client)
        self.plural = plural
        self.namespace = namespace
        self._on_event = on_event
        self._on_begin = on_begin
        self._on_listed = on_listed
        self._loop = loop
        self._page_size = page_size
        self._stop = threading.Event()
        self._response: Any = None
        self.listed = asyncio.Event()  # set after the first complete listing
        self._thread = threading.Thread(
            target=self._run, name=f"atoma-watch-{plural}-{namespace or 'all'}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):  # unblocks a read waiting on the stream
                response.shutdown()

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        rv: str | None = None
        while not self._stop.is_set():
            try:
                if rv is None:
                    rv = self._list()
                    self._hand(self._mark_listed())
                rv = self._watch(rv)
            except Gone:
                log.info("%s watch expired (410); listing again", self._where())
                rv = None
            except (ApiException, OSError, urllib3.exceptions.HTTPError, ValueError) as exc:
                if self._stop.is_set():
                    return
                log.warning("%s watch failed: %s; retrying", self._where(), _short(exc))
                self._stop.wait(RETRY_SECONDS)
            except _LoopClosed:
                return

    async def _mark_listed(self) -> None:
        self.listed.set()

    def _list(self) -> str:
        names: set[tuple[str, str]] = set()
        token: str | None = None
        self._hand(self._on_begin())
        while True:
            kwargs: dict[str, Any] = {"limit": self._page_size}
            if token:
                kwargs["_continue"] = token
            try:
                page = self._call(**kwargs)
            except ApiException as exc:
                if exc.status == 410 and token:  # the continue token expired: start over
                    names.clear()
                    token = None
                    self._hand(self._on_begin())
                    continue
                raise
            items = page.get("items") or []
            self._hand(self._deliver_page(items))
            for item in items:
                meta = item.get("metadata") or {}
                names.add((str(meta.get("namespace", "")), str(meta.get("name"))))
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                self._hand(self._on_listed(names))
                return str(meta.get("resourceVersion") or "")

    async def _deliver_page(self, items: list[dict[str, Any]]) -> None:
        kind = self._kind()
        for item in items:
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", f"{GROUP}/{VERSION}")
            await self._on_event("ADDED", item)

    def _watch(self, rv: str) -> str:
        response = self._call(
            watch=True,
            resource_version=rv,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_SECONDS,
            _preload_content=False,
            _request_timeout=(10, WATCH_SECONDS + 30),
        )
        self._response = response
        try:
            for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
                if self._stop.is_set():
                    break
                if not line or line.isspace():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone()
                    raise ValueError(f"watch error: {obj.get('message') or obj}")
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self._hand(self._on_event(kind, obj))
        finally:
            self._response = None
            response.release_conn()
        return rv

    def _call(self, **kwargs: Any) -> Any:
        if self.namespace is None:
            return self._api.list_cluster_custom_object(GROUP, VERSION, self.plural, **kwargs)
        return self._api.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, self.plural, **kwargs
        )

    def _hand(self, coro: Awaitable[None]) -> None:
        """Run `coro` on the loop and wait for it: back-pressure for the thread."""
        if self._loop.is_closed():
            raise _LoopClosed()
        future: concurrent.futures.Future[None] = asyncio.run_coroutine_threadsafe(
            coro,  # type: ignore[arg-type]
            self._loop,
        )
        while True:
            try:
                future.result(timeout=1.0)
                return
            except TimeoutError:
                if self._stop.is_set() or self._loop.is_closed():
                    future.cancel()
                    raise _LoopClosed() from None

    def _kind(self) -> str:
        from atoma_operator.kube import PLURALS

        return next(k for k, p in PLURALS.items() if p == self.plural)

    def _where(self) -> str:
        return f"{self.plural} in {self.namespace or 'all namespaces'}"


class _LoopClosed(Exception):
    pass


def _short(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"
