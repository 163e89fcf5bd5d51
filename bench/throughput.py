"""Sections 1-3: throughput against the two baselines, latency at a steady rate, and cost.

Every phase gets a fresh stand-in with the same shape (badges, gas coins, one new stack
per transaction), so no phase pays for another's chain history.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atoma_dev.operator_process import OperatorProcess, metric_sum, process_usage
from bench import bare
from bench.env import Chain, Cluster, chain, operator
from bench.kube import (
    READ_VERBS,
    WRITE_VERBS,
    RequestKey,
    Timeline,
    Watcher,
    create_all,
    request_counts,
    settlement,
)
from bench.profile import Sampler, top_costs
from bench.report import spread

Progress = Callable[[str, int], Callable[[int], None]]
"""(description, total) -> an `advance(n)` callback (a tqdm bar, or nothing)."""


@dataclass(frozen=True)
class Shape:
    badges: int
    coins: int
    concurrency: int
    latency: float = 0.0  # the stand-in's consensus latency (mean seconds; 0 = off)
    jitter: float = 0.0


def _plan(made: Chain, n: int) -> list[tuple[int, int]]:
    """n (node small id, stack) pairs, round-robin over the badges, all stacks fresh."""
    per = -(-n // len(made.badges))
    for badge in made.badges:
        made.add_stacks(badge, per)
    pairs = [
        (b.node_small_id, made.stacks[b.node_small_id][i]) for i in range(per) for b in made.badges
    ]
    return pairs[:n]


def _rpc_calls(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    b: Counter[str] = Counter(before.get("calls", {}))
    a: Counter[str] = Counter(after.get("calls", {}))
    return {k: v for k, v in (a - b).items() if v}


def _executions(made: Chain) -> dict[str, int]:
    result: dict[str, int] = made.counters().get("executions", {})
    return result


def _operator_for(
    made: Chain, cluster: Cluster, namespace: str, shape: Shape, workdir: Path, **env: str
) -> OperatorProcess:
    proc = operator(
        made.operator_env(
            namespace=namespace,
            kubeconfig=cluster.plane.kubeconfig,
            ATOMA_CONCURRENCY=str(shape.concurrency),
            ATOMA_NAMESPACES=f'["{namespace}"]',
            **env,
        ),
        workdir,
    )
    return proc.start(timeout=120)


def operator_phase(
    cluster: Cluster,
    workdir: Path,
    shape: Shape,
    n: int,
    progress: Progress,
    *,
    rate: float | None = None,
    timeout: float = 3600,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Apply n one-stack resources (all at once, or `rate` per second) and time them to Ready.

    With `profile`, py-spy samples the operator from the first create to the last Ready
    and writes raw collapsed stacks there (the sampler takes CPU from the same cores)."""
    with chain(
        workdir / "chain",
        badges=shape.badges,
        coins=shape.coins,
        latency=shape.latency,
        jitter=shape.jitter,
    ) as made:
        pairs = _plan(made, n)
        ns = cluster.namespace("bench")
        proc = _operator_for(made, cluster, ns, shape, workdir)
        try:
            manifests = [
                settlement(f"s{i:05d}", [sid], node=node if shape.badges > 1 else None)
                for i, (node, sid) in enumerate(pairs)
            ]
            timeline = Timeline()
            cpu_before = proc.usage().cpu_seconds
            chain_cpu_before = process_usage(made.proc.proc.pid).cpu_seconds  # type: ignore[union-attr]
            chain_before = made.counters()
            api_before = request_counts(cluster.plane)
            sampler: AbstractContextManager[object] = (
                Sampler(proc.pid, profile) if profile is not None else nullcontext()
            )
            with Watcher(cluster, ns, timeline), sampler:
                started = time.monotonic()
                if rate is None:
                    create_all(cluster, ns, manifests, timeline)
                else:
                    _paced(cluster, ns, manifests, timeline, rate)
                ended = timeline.wait_ready(
                    [m["metadata"]["name"] for m in manifests],
                    timeout=timeout,
                    progress=progress("operator" if rate is None else f"operator @{rate}/s", n),
                )
            op_usage = proc.usage()
            chain_cpu = process_usage(made.proc.proc.pid).cpu_seconds - chain_cpu_before  # type: ignore[union-attr]
            api_after = request_counts(cluster.plane)
            chain_after = made.counters()
            metrics = proc.metrics()
        finally:
            proc.stop()
        executions = _executions(made)
        latency = made.counters().get("shared_latency", {})
    names = [m["metadata"]["name"] for m in manifests]
    to_digest = [timeline.digest[x] - timeline.applied[x] for x in names if x in timeline.digest]
    to_ready = [timeline.ready[x] - timeline.applied[x] for x in names if x in timeline.ready]
    return {
        "n": n,
        "seconds": ended - started,
        "ready": len(to_ready),
        "stalled": len(timeline.stalled),
        "apply_to_digest_s": spread(to_digest),
        "apply_to_ready_s": spread(to_ready),
        "executed_transactions": sum(executions.values()),
        "max_executions_per_digest": max(executions.values(), default=0),
        "chain_rpc_calls": _rpc_calls(chain_before, chain_after),
        "apiserver_requests": _api_delta(api_before, api_after),
        "equivocation_refusals": metric_sum(metrics, "atoma_operator_equivocation_refusals_total"),
        "retries": metric_sum(metrics, "atoma_operator_retries_total"),
        "intent_to_effects_mean_s": _mean(metrics, "atoma_operator_submit_to_final_seconds"),
        "operator_cpu_s": op_usage.cpu_seconds - cpu_before,
        "operator_rss_mib": op_usage.rss_bytes / 2**20,
        "standin_cpu_s": chain_cpu,
        "shared_latency": latency,
        "profile": top_costs(profile, 30) if profile is not None and profile.exists() else None,
    }


def _mean(metrics: dict[str, float], histogram: str) -> float | None:
    count = metric_sum(metrics, histogram + "_count")
    return metric_sum(metrics, histogram + "_sum") / count if count else None


def _paced(
    cluster: Cluster, ns: str, manifests: list[dict[str, Any]], timeline: Timeline, rate: float
) -> None:
    """Create one resource every 1/rate seconds (an arrival schedule, not a synchronisation)."""
    t0 = time.monotonic()
    for i, manifest in enumerate(manifests):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        create_all(cluster, ns, [manifest], timeline, threads=1)


def _api_delta(before: Counter[RequestKey], after: Counter[RequestKey]) -> dict[str, int]:
    delta = after - before
    return {"/".join(k): v for k, v in sorted(delta.items()) if v}


def bare_phase(
    workdir: Path, shape: Shape, n: int, progress: Progress, *, sequential: bool
) -> dict[str, Any]:
    label = "daemon (sequential)" if sequential else "bare pysui (parallel)"
    with chain(
        workdir,
        badges=shape.badges,
        coins=shape.coins,
        latency=shape.latency,
        jitter=shape.jitter,
    ) as made:
        pairs = _plan(made, n)
        by_node = {b.node_small_id: b.object_id for b in made.badges}
        jobs = [bare.Job(by_node[node], sid) for node, sid in pairs]
        before = made.counters()
        chain_cpu_before = process_usage(made.proc.proc.pid).cpu_seconds  # type: ignore[union-attr]
        cpu_before = time.process_time()  # the bare loop runs in this process
        result = asyncio.run(
            bare.settle(made, jobs, sequential=sequential, progress=progress(label, n))
        )
        client_cpu = time.process_time() - cpu_before
        after = made.counters()
        chain_cpu = process_usage(made.proc.proc.pid).cpu_seconds - chain_cpu_before  # type: ignore[union-attr]
        executions = _executions(made)
    return {
        "standin_cpu_s": chain_cpu,
        "client_cpu_s": client_cpu,
        "shared_latency": after.get("shared_latency", {}),
        "n": n,
        "seconds": result.seconds,
        "executed_transactions": sum(executions.values()),
        "failed": result.failed,
        "tx_latency_s": spread(result.latencies),
        "chain_rpc_calls": _rpc_calls(before, after),
    }


def writes_and_reads(requests: dict[str, int]) -> tuple[int, int, int]:
    """(writes, reads, watches) among the apiserver requests of a phase."""
    writes = reads = watches = 0
    for key, count in requests.items():
        verb = key.split("/", 1)[0]
        if verb in WRITE_VERBS:
            writes += count
        elif verb in READ_VERBS:
            reads += count
        elif verb == "WATCH":
            watches += count
    return writes, reads, watches
