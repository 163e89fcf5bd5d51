"""Creating StackSettlements in bulk, timing them with one watch, counting apiserver requests.

The watch (one LIST + one long WATCH) is the bench's only read path, so what it adds to
the apiserver's counters is known and small; creates go through the Python client so
each is exactly one POST (kubectl apply would add a GET per object).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from atoma_dev.controlplane import ControlPlane
from atoma_dev.operator_process import parse_samples
from bench.env import PROOF_HEX, Cluster

GROUP, VERSION, PLURAL = "atoma.network", "v1alpha1", "stacksettlements"


def settlement(
    name: str, stacks: list[int], *, node: int | None, units: int = 10
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "stackSmallIds": stacks,
        "numClaimedComputeUnits": units,
        "proofs": [{"stackSmallId": s, "totalHash": PROOF_HEX} for s in stacks],
    }
    if node is not None:
        spec["nodeSmallId"] = node
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "StackSettlement",
        "metadata": {"name": name, "namespace": ""},
        "spec": spec,
    }


def _conditions(obj: dict[str, Any]) -> dict[str, str]:
    conds = (obj.get("status") or {}).get("conditions") or []
    return {str(c.get("type")): str(c.get("status")) for c in conds}


def _digest(obj: dict[str, Any]) -> str | None:
    for entry in (obj.get("status") or {}).get("stacks") or []:
        pending = entry.get("pending") or {}
        digest = entry.get("txDigest") or pending.get("digest")
        if digest:
            return str(digest)
    return None


@dataclass
class Timeline:
    """Per resource name: when it was applied, first showed a digest, first was Ready."""

    applied: dict[str, float] = field(default_factory=dict)
    digest: dict[str, float] = field(default_factory=dict)
    ready: dict[str, float] = field(default_factory=dict)
    stalled: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    def wait_ready(
        self,
        names: Iterable[str],
        *,
        timeout: float,
        progress: Callable[[int], None] | None = None,
    ) -> float:
        """Block until every name is Ready (or Stalled); returns the monotonic end time."""
        wanted = set(names)
        deadline = time.monotonic() + timeout
        seen = 0
        with self.changed:
            while True:
                done = sum(1 for n in wanted if n in self.ready or n in self.stalled)
                if progress is not None and done > seen:
                    progress(done - seen)
                    seen = done
                if done == len(wanted):
                    return max((self.ready.get(n, 0.0) for n in wanted), default=time.monotonic())
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = sorted(wanted - self.ready.keys() - self.stalled.keys())
                    raise TimeoutError(f"{len(missing)} not Ready after {timeout}s: {missing[:5]}")
                self.changed.wait(min(left, 1.0))


class Watcher:
    """One watch over a namespace's StackSettlements, feeding a Timeline."""

    def __init__(self, cluster: Cluster, namespace: str, timeline: Timeline) -> None:
        self._cluster = cluster
        self._ns = namespace
        self.timeline = timeline
        self._stop = threading.Event()
        self._watch = watch.Watch()  # type: ignore[no-untyped-call]
        self._thread = threading.Thread(target=self._run, name=f"watch-{namespace}", daemon=True)
        self._started = threading.Event()

    def __enter__(self) -> Watcher:
        self._thread.start()
        self._started.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._watch.stop()  # type: ignore[no-untyped-call]
        self._thread.join(timeout=10)

    def _run(self) -> None:
        rv: str | None = None
        while not self._stop.is_set():
            try:
                if rv is None:
                    listing: Any = self._cluster.custom.list_namespaced_custom_object(
                        GROUP, VERSION, self._ns, PLURAL
                    )
                    for obj in listing.get("items", []):
                        self._see(obj)
                    rv = listing["metadata"]["resourceVersion"]
                    self._started.set()
                for event in self._watch.stream(  # type: ignore[no-untyped-call]
                    self._cluster.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self._ns,
                    PLURAL,
                    resource_version=rv,
                    timeout_seconds=300,
                ):
                    obj = event["object"]
                    rv = obj["metadata"]["resourceVersion"]
                    self._see(obj)
                    if self._stop.is_set():
                        return
            except ApiException as exc:
                if exc.status == 410:
                    rv = None  # too old: list again
                elif not self._stop.is_set():
                    time.sleep(0.5)  # back off before re-watching after an error
            except Exception:
                if self._stop.is_set():
                    return
                time.sleep(0.5)  # the apiserver may be restarting; re-watch

    def _see(self, obj: dict[str, Any]) -> None:
        now = time.monotonic()
        name = obj["metadata"]["name"]
        conds = _conditions(obj)
        tl = self.timeline
        with tl.changed:
            if name not in tl.digest and _digest(obj):
                tl.digest[name] = now
            if name not in tl.ready and conds.get("Ready") == "True":
                tl.ready[name] = now
                tl.changed.notify_all()
            if name not in tl.stalled and conds.get("Stalled") == "True":
                tl.stalled[name] = str(obj.get("status", {}).get("conditions"))
                tl.changed.notify_all()


def create_all(
    cluster: Cluster,
    namespace: str,
    manifests: list[dict[str, Any]],
    timeline: Timeline,
    *,
    threads: int = 8,
) -> None:
    """POST every manifest (in parallel), recording each one's apply time."""

    def one(manifest: dict[str, Any]) -> None:
        manifest["metadata"]["namespace"] = namespace
        name = manifest["metadata"]["name"]
        with timeline.lock:
            timeline.applied[name] = time.monotonic()
        cluster.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, manifests))


RequestKey = tuple[str, str, str]  # (verb, resource, subresource)


def request_counts(plane: ControlPlane) -> Counter[RequestKey]:
    """apiserver_request_total by verb/resource/subresource, from the apiserver's /metrics."""
    text = plane.kubectl("get", "--raw", "/metrics", timeout=60).stdout
    counts: Counter[RequestKey] = Counter()
    for key, value in parse_samples(text).items():
        if not key.startswith("apiserver_request_total{"):
            continue
        labels = dict(
            part.split("=", 1) for part in key[len("apiserver_request_total{") : -1].split('",')
        )
        clean = {k: v.strip('"') for k, v in labels.items()}
        counts[
            (clean.get("verb", ""), clean.get("resource", ""), clean.get("subresource", ""))
        ] += int(value)
    return counts


WRITE_VERBS = {"POST", "PUT", "PATCH", "DELETE", "APPLY"}
READ_VERBS = {"GET", "LIST"}
