"""Section 4: the operator's memory and CPU with many resources, and the follower's idle cost.

Thousands of real settlements would take the stand-in's whole run, so the many are
cheap copies: one real resource is settled through the chain until its dispute period
ends (Settled), and its status is stamped onto resources for stacks that do not exist
on chain. They are final, so nothing the operator does should touch the chain for them;
that is what the follower figure checks (calls per minute at a small and a large count).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from atoma_dev.operator_process import OperatorProcess, metric_sum
from bench.env import Chain, Cluster, chain, operator
from bench.kube import GROUP, PLURAL, VERSION, Timeline, Watcher, settlement
from bench.throughput import Progress

MIB = 1024 * 1024
FAKE_STACK_BASE = 1_000_000  # far above any stack the stand-in hands out


def _settled_template(cluster: Cluster, made: Chain, ns: str, timeline: Timeline) -> dict[str, Any]:
    """Settle one real stack and advance epochs until its resource says Settled."""
    badge = made.badges[0]
    (sid,) = made.add_stacks(badge, 1)
    manifest = settlement("template", [sid], node=None)
    manifest["metadata"]["namespace"] = ns
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, manifest)
    timeline.wait_ready(["template"], timeout=120)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        obj: Any = cluster.custom.get_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, "template"
        )
        conds = {c["type"]: c["status"] for c in obj["status"].get("conditions", [])}
        if conds.get("Settled") == "True":
            template: dict[str, Any] = obj
            return template
        made.admin("/epoch/advance", {})
        _wait_status_change(cluster, ns, obj["metadata"]["resourceVersion"])
    raise TimeoutError("the template resource never became Settled")


def _wait_status_change(cluster: Cluster, ns: str, rv: str, timeout: float = 15) -> None:
    """Poll until the template's resourceVersion moves (the follower saw the epoch)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        obj: Any = cluster.custom.get_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, "template"
        )
        if obj["metadata"]["resourceVersion"] != rv:
            return
        time.sleep(0.2)  # polling with a deadline


def _stamp(
    cluster: Cluster,
    ns: str,
    template: dict[str, Any],
    first: int,
    count: int,
    advance: Callable[[int], None],
) -> None:
    """Create `count` copies of the template (POST, then its status via the subresource)."""
    status = template["status"]
    spec = template["spec"]

    def one(i: int) -> None:
        sid = FAKE_STACK_BASE + i
        name = f"f{i:05d}"
        body_spec = copy.deepcopy(spec)
        body_spec["stackSmallIds"] = [sid]
        body_spec["proofs"][0]["stackSmallId"] = sid
        cluster.custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            ns,
            PLURAL,
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "StackSettlement",
                "metadata": {"name": name, "namespace": ns},
                "spec": body_spec,
            },
        )
        body_status = copy.deepcopy(status)
        body_status["stacks"][0]["stackSmallId"] = sid
        cluster.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, ns, PLURAL, name, {"status": body_status}
        )
        advance(1)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(first, first + count)))


def _wait_seen(proc: OperatorProcess, count: int, advance: Callable[[int], None]) -> None:
    """Until the operator's resource gauge counts `count` StackSettlements (its registry
    has taken in every watch event: nothing is written into the objects to watch for)."""
    deadline = time.monotonic() + 3600
    seen = 0
    while seen < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the operator saw {seen}/{count} resources")
        now = int(metric_sum(proc.metrics(), "atoma_operator_resources", kind="StackSettlement"))
        if now > seen:
            advance(now - seen)
            seen = now
        else:
            time.sleep(0.5)  # polling a gauge with a deadline


def _settle_cpu(proc: OperatorProcess, *, quiet: float = 0.05, window: float = 3.0) -> float:
    """Wait until the operator uses < `quiet` of a core over `window` s; returns time taken."""
    started = time.monotonic()
    deadline = started + 600
    last = proc.usage().cpu_seconds
    while time.monotonic() < deadline:
        time.sleep(window)  # a measurement window, not a synchronisation
        now = proc.usage().cpu_seconds
        if (now - last) / window < quiet:
            return time.monotonic() - started
        last = now
    raise TimeoutError("the operator never went idle")


def _idle_sample(proc: OperatorProcess, made: Chain, seconds: float) -> dict[str, Any]:
    """Chain RPCs per minute and CPU share while nothing happens, over `seconds`."""
    calls_before = dict(made.counters()["calls"])
    cpu_before = proc.usage().cpu_seconds
    time.sleep(seconds)  # the measurement window itself
    calls_after = dict(made.counters()["calls"])
    usage = proc.usage()
    delta = {k: calls_after.get(k, 0) - calls_before.get(k, 0) for k in calls_after}
    return {
        "chain_rpc_per_minute": round(sum(delta.values()) * 60 / seconds, 1),
        "chain_rpc_by_method": {k: v for k, v in delta.items() if v},
        "idle_cpu_percent": round((usage.cpu_seconds - cpu_before) * 100 / seconds, 2),
        "rss_mib": round(usage.rss_bytes / MIB, 1),
        "peak_rss_mib": round(usage.peak_rss_bytes / MIB, 1),
    }


def scale_phase(
    cluster: Cluster,
    workdir: Path,
    counts: list[int],
    progress: Progress,
    *,
    idle_seconds: float = 30,
) -> dict[str, Any]:
    """For each count (ascending): grow to that many resources, then restart and measure."""
    results: dict[str, Any] = {}
    with chain(workdir / "chain", badges=1, coins=4) as made:
        ns = cluster.namespace("scale")
        env = made.operator_env(
            namespace=ns,
            kubeconfig=cluster.plane.kubeconfig,
            ATOMA_NAMESPACES=f'["{ns}"]',
        )
        proc = operator(env, workdir, "scale-operator").start(timeout=120)
        timeline = Timeline()
        try:
            with Watcher(cluster, ns, timeline):
                template = _settled_template(cluster, made, ns, timeline)
            have = 0
            for count in sorted(counts):
                # The copies are made while the operator is stopped (and nothing in the
                # bench watches them): on two shared cores the apiserver, not the
                # operator, is what stamping 100,000 objects waits for.
                proc.stop()
                _stamp(
                    cluster,
                    ns,
                    template,
                    have,
                    count - have,
                    progress(f"create {count}", count - have),
                )
                have = count
                # A fresh process: its memory is what holding `count` resources costs,
                # and its start-up pass (one paged list) is what every restart costs.
                started = time.monotonic()
                proc.start(timeout=600)
                _wait_seen(proc, count + 1, progress(f"operator sees {count}", count + 1))
                _settle_cpu(proc)
                to_idle = time.monotonic() - started
                startup = proc.usage()
                sample = _idle_sample(proc, made, idle_seconds)
                results[str(count)] = {
                    "resources": count + 1,
                    "restart_to_idle_s": round(to_idle, 1),
                    "startup_cpu_s": round(startup.cpu_seconds, 1),
                    **sample,
                }
        finally:
            proc.stop()
    return results
