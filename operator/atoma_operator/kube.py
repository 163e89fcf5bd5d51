"""The few Kubernetes API calls the operator makes outside kopf's own machinery.

Status writes carry `metadata.resourceVersion`, so the apiserver rejects a write based
on a stale read (409): that is how the write-ahead record stays single-writer.
The calls made per stack (read, status patch, Event, delete) go through `kubehttp`
on the event loop; the rare ones (ConfigMaps, Secrets) use the synchronous kubernetes
client in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kubernetes
from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException

from atoma_operator.kubehttp import KubeHttp, events_path, object_path
from atoma_operator.resources.attestation import NAMES as ATST_NAMES
from atoma_operator.resources.common import GROUP, VERSION
from atoma_operator.resources.stack_settlement import NAMES as STL_NAMES

log = logging.getLogger(__name__)

PLURALS = {names.kind: names.plural for names in (STL_NAMES, ATST_NAMES)}


class Conflict(Exception):
    """The object changed since it was read; re-read and decide again."""


class NotFound(Exception):
    """The referenced object does not exist (or vanished)."""


@dataclass(frozen=True)
class ObjectKey:
    kind: str
    namespace: str
    name: str


def make_api_client() -> ApiClient:
    """In-cluster config when running in a pod, else the kubeconfig (KUBECONFIG)."""
    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        # Read KUBECONFIG now: the library's default path is frozen at its import time.
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=os.environ.get("KUBECONFIG")
        )
    return ApiClient()


class Kube:
    """Thin async facade over the sync client; one instance per operator process."""

    def __init__(self, api_client: ApiClient | None = None) -> None:
        self._client = api_client or make_api_client()
        self._core = CoreV1Api(self._client)
        self._http = KubeHttp(self._client)

    @property
    def api_client(self) -> ApiClient:
        return self._client

    @property
    def http(self) -> KubeHttp:
        """The event-loop client (watches, and the calls made per stack)."""
        return self._http

    def _path(self, key: ObjectKey, sub: str = "") -> str:
        return object_path(GROUP, VERSION, key.namespace, PLURALS[key.kind], key.name) + sub

    async def get(self, key: ObjectKey) -> dict[str, Any]:
        try:
            return await self._http.request("GET", self._path(key))
        except ApiException as exc:
            if exc.status == 404:
                raise NotFound(f"{key.kind} {key.namespace}/{key.name} not found") from None
            raise

    async def patch_status(
        self, key: ObjectKey, status: dict[str, Any], resource_version: str | None
    ) -> dict[str, Any]:
        """Merge-patch the status subresource; with a resourceVersion it is conditional."""
        body: dict[str, Any] = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            return await self._http.request(
                "PATCH",
                self._path(key, "/status"),
                body,
                content_type="application/merge-patch+json",
            )
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(f"{key.kind} {key.namespace}/{key.name} changed") from None
            if exc.status == 404:
                raise NotFound(f"{key.kind} {key.namespace}/{key.name} not found") from None
            raise

    async def read_config_bytes(self, namespace: str, *, kind: str, name: str, key: str) -> bytes:
        """One key of a ConfigMap (`data` or `binaryData`) or Secret, as bytes.

        Callers never log the value: a Secret may hold it.
        """
        try:
            if kind == "Secret":
                secret = await asyncio.to_thread(self._core.read_namespaced_secret, name, namespace)
                data = (secret.data or {}).get(key)
                if data is None:
                    raise NotFound(f'Secret {namespace}/{name} has no key "{key}"')
                return base64.b64decode(data)
            cm = await asyncio.to_thread(self._core.read_namespaced_config_map, name, namespace)
            text = (cm.data or {}).get(key)
            if text is not None:
                return str(text).encode("utf-8")
            blob = (cm.binary_data or {}).get(key)
            if blob is not None:
                return base64.b64decode(blob)
            raise NotFound(f'ConfigMap {namespace}/{name} has no key "{key}"')
        except ApiException as exc:
            if exc.status == 404:
                raise NotFound(f"{kind} {namespace}/{name} not found") from None
            if exc.status == 403:
                raise NotFound(
                    f"{kind} {namespace}/{name} is not readable by the operator (RBAC)"
                ) from None
            raise

    async def delete(self, key: ObjectKey, *, uid: str | None = None) -> None:
        """Delete a resource; with `uid`, only that incarnation (a re-created object of the
        same name is left alone). A missing object is not an error."""
        body: dict[str, Any] = {"preconditions": {"uid": uid}} if uid else {}
        try:
            await self._http.request("DELETE", self._path(key), body)
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    async def get_config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            cm = await asyncio.to_thread(self._core.read_namespaced_config_map, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(cm.data or {})

    async def put_config_map(
        self,
        namespace: str,
        name: str,
        data: dict[str, str],
        *,
        labels: dict[str, str] | None = None,
    ) -> None:
        """Create or merge-patch a ConfigMap (the follower's cursor lives in one)."""
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        if labels:
            metadata["labels"] = labels
        body = {"metadata": metadata, "data": data}
        try:
            await asyncio.to_thread(
                self._core.patch_namespaced_config_map,
                name,
                namespace,
                body,  # type: ignore[arg-type]
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            await asyncio.to_thread(
                self._core.create_namespaced_config_map,
                namespace,
                body,  # type: ignore[arg-type]
            )

    async def post_event(
        self, obj: dict[str, Any], *, type_: str, reason: str, message: str
    ) -> None:
        """A core/v1 Event about `obj`, for code running outside kopf's handler context
        (the follower), where kopf.event has no posting queue."""
        meta = obj["metadata"]
        now = datetime.now(UTC)
        body = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", f"{GROUP}/{VERSION}"),
                "kind": obj.get("kind"),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "atoma-operator"},
            "reportingComponent": "atoma-operator",
            "firstTimestamp": now.isoformat(),
            "lastTimestamp": now.isoformat(),
            "count": 1,
        }
        try:
            await self._http.request("POST", events_path(meta["namespace"]), body)
        except (ApiException, OSError) as exc:  # an Event is best effort: never fail
            log.warning("could not post event %s on %s: %s", reason, meta["name"], exc)

    async def close(self) -> None:
        await self._http.close()
        self._client.close()  # type: ignore[no-untyped-call]
