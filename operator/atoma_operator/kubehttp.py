"""Asynchronous requests to the apiserver for the hot path (read, status patch, Event).

The official kubernetes client is synchronous: every call in a pass went through a
worker thread (`asyncio.to_thread`) and the client's generic (de)serialisation, which
the profile put at a sixth of the operator's CPU per stack. The few calls made once or
more per stack go through aiohttp on the event loop instead, with the same credentials:
they are read from the kubernetes client's own configuration (kubeconfig or in-cluster,
including its token refresh hook), so both clients authenticate identically.

Errors keep the kubernetes client's shape, so callers handle one kind: an HTTP error is
an `ApiException` with its status; a transport failure is `ApiUnreachable` (an OSError,
like urllib3's connection errors it replaces).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

REQUEST_TIMEOUT_SECONDS = 30.0


class ApiUnreachable(OSError):
    """The apiserver could not be reached or did not answer in time."""


def _ssl_context(cfg: Any) -> ssl.SSLContext | bool:
    if not cfg.host.startswith("https"):
        return False
    if not cfg.verify_ssl:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
        if getattr(cfg, "assert_hostname", None) is False:
            ctx.check_hostname = False
    if cfg.cert_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    return ctx


class KubeHttp:
    """One aiohttp session per event loop, with the kubernetes client's credentials."""

    def __init__(self, api_client: ApiClient) -> None:
        self._cfg = api_client.configuration
        self._host = self._cfg.host.rstrip("/")
        self._ssl = _ssl_context(self._cfg)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proxy: str | None = getattr(self._cfg, "proxy", None) or None

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        # What the kubernetes client itself sends (its refresh hook re-reads a rotated
        # in-cluster token or runs an exec plugin); client certificates are in the SSL
        # context instead.
        for setting in self._cfg.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[setting["key"]] = setting["value"]
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            # A session belongs to one loop (tests run one loop per test).
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=64),
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS),
                json_serialize=json.dumps,
            )
            self._loop = loop
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        """`path` is absolute (/apis/...); returns the decoded JSON answer."""
        data = json.dumps(body).encode() if body is not None else None
        headers = self._headers(content_type or ("application/json" if data else None))
        try:
            async with self._client().request(
                method, self._host + path, data=data, headers=headers, proxy=self._proxy
            ) as response:
                text = await response.read()
                if response.status >= 400:
                    exc = ApiException(status=response.status, reason=response.reason)
                    exc.body = text.decode("utf-8", "replace")
                    raise exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ApiUnreachable(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        answer: dict[str, Any] = json.loads(text) if text else {}
        return answer

    async def lines(
        self, path: str, params: Mapping[str, str], *, read_timeout: float
    ) -> AsyncIterator[bytes]:
        """The lines of a streamed answer (a watch): one JSON event each.

        Split here rather than with the stream's readline, which refuses lines over 128
        KiB; an object with many stacks' intents can be larger.
        """
        url = f"{self._host}{path}?{urlencode(params)}"
        timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=read_timeout)
        try:
            async with self._client().get(
                url, headers=self._headers(None), timeout=timeout, proxy=self._proxy
            ) as response:
                if response.status >= 400:
                    exc = ApiException(status=response.status, reason=response.reason)
                    exc.body = (await response.read()).decode("utf-8", "replace")
                    raise exc
                buffer = b""
                async for chunk in response.content.iter_any():
                    buffer += chunk
                    if b"\n" not in chunk:
                        continue
                    *complete, buffer = buffer.split(b"\n")
                    for line in complete:
                        if line.strip():
                            yield line
                if buffer.strip():
                    yield buffer
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ApiUnreachable(f"watch {path}: {type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def object_path(group: str, version: str, namespace: str, plural: str, name: str) -> str:
    return (
        f"/apis/{group}/{version}/namespaces/{quote(namespace, safe='')}/"
        f"{plural}/{quote(name, safe='')}"
    )


def collection_path(group: str, version: str, namespace: str | None, plural: str) -> str:
    """A kind's collection in one namespace, or across all (namespace None)."""
    if namespace is None:
        return f"/apis/{group}/{version}/{plural}"
    return f"/apis/{group}/{version}/namespaces/{quote(namespace, safe='')}/{plural}"


def events_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{quote(namespace, safe='')}/events"
