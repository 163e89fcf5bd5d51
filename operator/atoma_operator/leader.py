"""Leader election on a coordination.k8s.io Lease: one active operator per signing key.

kopf's peering freezes or duplicates work rather than electing a leader, and two active
operators sharing a key could submit for the same stack or lease one gas coin twice.
So the operator's start-up waits until it holds the Lease; a standby keeps waiting; the
leader renews it and, if it cannot renew before the lease would expire, stops acting at
once (it terminates itself; Kubernetes restarts it as a standby). The identity is the
pod name (hostname), so a container restarted in the same pod takes its Lease back
without waiting for it to expire.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes.client import ApiClient, CoordinationV1Api
from kubernetes.client.exceptions import ApiException

from atoma_operator import metrics

log = logging.getLogger(__name__)


def default_identity() -> str:
    return os.environ.get("POD_NAME") or socket.gethostname()


def _fmt(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass(frozen=True)
class LeaseState:
    holder: str | None
    renewed: datetime | None
    duration: int
    resource_version: str | None

    @property
    def record(self) -> tuple[str | None, datetime | None, str | None]:
        """What changes whenever the holder renews (client-go's observed record)."""
        return (self.holder, self.renewed, self.resource_version)


class LeaderElector:
    def __init__(
        self,
        api_client: ApiClient,
        *,
        namespace: str,
        name: str,
        identity: str | None = None,
        lease_seconds: int = 15,
        retry_seconds: float = 2.0,
        on_lost: Callable[[], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = CoordinationV1Api(api_client)
        self.namespace = namespace
        self.name = name
        self.identity = identity or default_identity()
        self.lease_seconds = lease_seconds
        self.retry_seconds = retry_seconds
        self._on_lost = on_lost or _terminate_self
        self._monotonic = monotonic
        self._observed: tuple[Any, float] | None = None  # (record, local time first seen)
        self.is_leader = False
        metrics.report_leadership(lambda: self.is_leader)

    async def acquire(self) -> None:
        """Return once this process holds the Lease (waits as a standby until then)."""
        announced = False
        while not await self._try_take():
            if not announced:
                log.info(
                    "standby: lease %s/%s is held by another operator", self.namespace, self.name
                )
                announced = True
            # A poll interval: the Lease API has no "wait until free".
            await asyncio.sleep(self.retry_seconds)
        self.is_leader = True
        log.info("leading: holding lease %s/%s as %s", self.namespace, self.name, self.identity)

    async def keep(self) -> None:
        """Renew until cancelled; give up leadership (and stop) when renewing fails too long."""
        renew_every = self.lease_seconds / 3
        last_ok = time.monotonic()
        while True:
            await asyncio.sleep(renew_every)
            try:
                ok = await self._try_take()
            except Exception as exc:  # the apiserver may be restarting
                log.warning("lease renewal failed: %s", exc)
                ok = None
            if ok:
                last_ok = time.monotonic()
                continue
            if ok is False or time.monotonic() - last_ok > self.lease_seconds - renew_every:
                self.is_leader = False
                log.error(
                    "lost lease %s/%s: stopping so a standby can take over",
                    self.namespace,
                    self.name,
                )
                self._on_lost()
                return

    async def _read(self) -> LeaseState | None:
        try:
            lease = await asyncio.to_thread(
                self._api.read_namespaced_lease, self.name, self.namespace
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        spec = lease.spec
        return LeaseState(
            holder=spec.holder_identity if spec else None,
            renewed=_parse(spec.renew_time) if spec else None,
            duration=int((spec.lease_duration_seconds if spec else None) or self.lease_seconds),
            resource_version=lease.metadata.resource_version if lease.metadata else None,
        )

    async def _try_take(self) -> bool:
        """Create, renew or take over an expired Lease; False when another holder has it."""
        now = datetime.now(UTC)
        state = await self._read()
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.lease_seconds,
            "renewTime": _fmt(now),
        }
        if state is None:
            body = {
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {**spec, "acquireTime": _fmt(now)},
            }
            try:
                await asyncio.to_thread(self._api.create_namespaced_lease, self.namespace, body)  # type: ignore[arg-type]
            except ApiException as exc:
                if exc.status == 409:
                    return False
                raise
            return True
        if state.holder not in (None, "", self.identity) and not self._expired(state):
            return False
        if state.holder != self.identity:
            spec["acquireTime"] = _fmt(now)
        body = {"metadata": {"resourceVersion": state.resource_version}, "spec": spec}
        try:
            await asyncio.to_thread(
                self._api.patch_namespaced_lease, self.name, self.namespace, body
            )
        except ApiException as exc:
            if exc.status == 409:  # someone else renewed or took it meanwhile
                return False
            raise
        return True

    def _expired(self, state: LeaseState) -> bool:
        """As client-go decides it: the holder's record has not changed for a whole lease
        duration *measured on this clock* since this process first saw it. The holder's
        renewTime is never compared with the local wall clock, so clock skew between
        nodes cannot make two leaders."""
        now = self._monotonic()
        if self._observed is None or self._observed[0] != state.record:
            self._observed = (state.record, now)
            return False
        return now - self._observed[1] > state.duration


def _terminate_self() -> None:
    """Stop the whole process now: no further submission may start without the Lease."""
    os.kill(os.getpid(), signal.SIGTERM)
