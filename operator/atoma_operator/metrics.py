"""Prometheus metrics of the operator: one registry, names stable for dashboards and alerts.

Kept in one module so the Grafana dashboard in the chart, the PrometheusRule and the
tests that scrape /metrics have a single place to look the names up.

Metrics tell the truth while things fail, not only after a successful pass: gauges that
describe state are read when Prometheus scrapes (resources by condition, the gas pool,
follower lag, leadership), and every counter is created with its known label values, so
a 0 sample exists before the first event and `rate()`/`increase()` see the first one.
The standard process, platform and garbage-collector collectors are on the registry too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.metadata
import logging
import platform
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from atoma_operator.atoma.events import EVENT_NAMES

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
# The default registry's collectors, on ours: process_* (CPU, memory, fds, start time),
# python_info, python_gc_*. (Instances of their own: one collector, one registry.)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

KINDS = ("StackSettlement", "Attestation")
CONDITIONS = ("Ready", "Reconciling", "Stalled")
RPC_METHODS = (
    "GetEpoch",
    "GetObject",
    "GetGas",
    "GetServiceInfo",
    "GetTransaction",
    "SimulateTransaction",
    "ExecuteTransaction",
    "ListEvents",
)
"""The gRPC requests the gateway sends, by pysui request name (`GetGas` is
ListOwnedObjects for coins)."""
OUTAGE_CODES = ("UNAVAILABLE", "DEADLINE_EXCEEDED")
"""Codes an unreachable node produces: pre-initialised for every method."""
FOLLOWER_STEPS = ("epoch", "events", "tickets", "gas")
CURSOR_RESET_REASONS = ("out_of_range", "invalid")
KIND_LABELS = ("kind",)  # StackSettlement | Attestation

TX_SUBMITTED = Counter(
    "atoma_operator_transactions_submitted",
    "Transactions sent to the chain for execution (first send and re-sends of the same bytes).",
    KIND_LABELS,
    registry=REGISTRY,
)
TX_SUCCEEDED = Counter(
    "atoma_operator_transactions_succeeded",
    "Transactions whose effects reported success.",
    KIND_LABELS,
    registry=REGISTRY,
)
TX_ABORTED = Counter(
    "atoma_operator_transactions_aborted",
    "Transactions (or simulations) that ended in a Move abort, by abort name.",
    (*KIND_LABELS, "reason", "simulated"),
    registry=REGISTRY,
)
TX_RETRIES = Counter(
    "atoma_operator_retries",
    "Retry attempts after a retryable failure.",
    KIND_LABELS,
    registry=REGISTRY,
)
TX_FINAL_LATENCY = Histogram(
    "atoma_operator_submit_to_final_seconds",
    "Time from recording intent to knowing the transaction's effects.",
    KIND_LABELS,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)
GAS_SPENT = Counter(
    "atoma_operator_gas_spent_mist",
    "Gas paid (computation + storage - rebate), in MIST.",
    KIND_LABELS,
    registry=REGISTRY,
)
GAS_LEASES = Gauge(
    "atoma_operator_gas_coin_leases",
    "Gas coins currently leased to an unfinalised transaction.",
    registry=REGISTRY,
)
EQUIVOCATION_REFUSALS = Counter(
    "atoma_operator_equivocation_refusals",
    "Transactions the chain refused because their gas or owned object was locked.",
    registry=REGISTRY,
)
FOLLOWER_LAG = Gauge(
    "atoma_operator_follower_lag_seconds",
    "Seconds since the chain follower last reached the tip of the event stream (read at "
    "scrape time: grows while the chain is unreachable).",
    registry=REGISTRY,
)
FOLLOWER_CURSOR_RESETS = Counter(
    "atoma_operator_follower_cursor_resets",
    "Times the follower restarted from a safe point because the node refused its event "
    "cursor (out_of_range: below the pruning floor; invalid).",
    ("reason",),
    registry=REGISTRY,
)
FOLLOWER_EVENT_STREAM = Gauge(
    "atoma_operator_follower_event_stream",
    "1 while the follower reads ListEvents; 0 while the node does not serve it (RPC indexes "
    "disabled) and the follower reads the tickets of open resources every tick instead.",
    registry=REGISTRY,
)
FOLLOWER_FAILURES = Counter(
    "atoma_operator_follower_failures",
    "Follower passes that failed, by step (epoch, events, tickets, gas: the pool listing).",
    ("step",),
    registry=REGISTRY,
)
FOLLOWER_EVENTS = Counter(
    "atoma_operator_follower_events",
    "Atoma db events read by the chain follower, by event name.",
    ("event",),
    registry=REGISTRY,
)
CHAIN_RPC_CALLS = Counter(
    "atoma_operator_chain_rpc_calls",
    "gRPC calls made to the Sui full node, by method.",
    ("method",),
    registry=REGISTRY,
)
CHAIN_RPC_ERRORS = Counter(
    "atoma_operator_chain_rpc_errors",
    "gRPC calls to the Sui full node that did not return OK, by method and gRPC status code "
    "(an unreachable node counts as UNAVAILABLE, a client-side timeout as DEADLINE_EXCEEDED; "
    "NOT_FOUND is the normal answer of a lookup for something not there yet).",
    ("method", "code"),
    registry=REGISTRY,
)
LEADER = Gauge(
    "atoma_operator_leader",
    "1 while this replica holds the leader Lease and acts, 0 while it is a standby "
    "(1 when leader election is off).",
    registry=REGISTRY,
)
BUILD_INFO = Gauge(
    "atoma_operator_build_info",
    "Always 1; the labels say which operator and library versions run.",
    ("version", "python", "kopf", "pysui", "prometheus_client"),
    registry=REGISTRY,
)

CLAIMED_STACKS = Gauge(
    "atoma_operator_claimed_stacks",
    "Claimed stacks retained per badge (node small id), by the seed's attestation_status.",
    ("node", "attestation_status"),
    registry=REGISTRY,
)


# -- state read at scrape time ---------------------------------------------------------------


class GasPoolStats(Protocol):
    """What the state collector reads from the gas-coin pool (sui.gas.GasStats)."""

    @property
    def loaded(self) -> bool: ...

    @property
    def pool_balance(self) -> int: ...

    @property
    def usable(self) -> int: ...


ConditionCounts = Callable[[], Mapping[str, Mapping[str, int]]]
GasReader = Callable[[], GasPoolStats]


class _StateCollector(Collector):
    """Resource counts and gas-pool numbers, read from the operator's own state on every
    scrape (so they are current while passes fail), on the event loop that owns that
    state (the HTTP server runs in a thread of its own)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conditions: ConditionCounts | None = None
        self._gas: GasReader | None = None
        self._last: dict[Callable[[], Any], Any] = {}  # per source: its last answer

    def bind(
        self,
        loop: asyncio.AbstractEventLoop | None,
        conditions: ConditionCounts | None,
        gas: GasReader | None,
    ) -> None:
        self._loop, self._conditions, self._gas = loop, conditions, gas
        self._last = {}

    def _read(self, fn: Callable[[], Any]) -> Any:
        """fn() on the bound loop; None once that loop has stopped (its operator is gone);
        the last answer when the loop is too busy to answer in time."""
        loop = self._loop
        if loop is None:
            return fn()  # bound outside any loop (tests)
        if loop.is_closed() or not loop.is_running():
            return None  # the operator that owned this state has stopped
        try:
            if asyncio.get_running_loop() is loop:
                return fn()  # called from the loop itself (tests)
        except RuntimeError:
            pass  # no loop in this thread: the HTTP server's thread
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except BaseException as exc:  # handed to the scraping thread
                done.set_exception(exc)

        try:
            loop.call_soon_threadsafe(run)
            value = done.result(timeout=SCRAPE_READ_TIMEOUT_SECONDS)
        except RuntimeError:  # the loop was closed meanwhile
            return None
        except concurrent.futures.TimeoutError:
            log.warning(
                "metrics: the event loop did not answer within %.0fs; reporting its last "
                "known state",
                SCRAPE_READ_TIMEOUT_SECONDS,
            )
            return self._last.get(fn)
        self._last[fn] = value
        return value

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [_resources_family(), _gas_balance_family(), _gas_usable_family()]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        resources = _resources_family()
        counts = self._read(self._conditions) if self._conditions is not None else None
        for kind in KINDS:
            for condition in CONDITIONS:
                value = ((counts or {}).get(kind) or {}).get(condition, 0)
                resources.add_metric([kind, condition], value)
        yield resources
        stats = self._read(self._gas) if self._gas is not None else None
        if stats is not None and stats.loaded:  # no guess before the first listing
            balance, usable = _gas_balance_family(), _gas_usable_family()
            balance.add_metric([], stats.pool_balance)
            usable.add_metric([], stats.usable)
            yield balance
            yield usable


SCRAPE_READ_TIMEOUT_SECONDS = 2.0


def _resources_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "atoma_operator_resources",
        "Resources known to the operator, by kind and summarised condition (Ready, "
        "Reconciling, Stalled), counted at scrape time.",
        labels=("kind", "condition"),
    )


def _gas_balance_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "atoma_operator_gas_pool_balance_mist",
        "Balance of the gas coins in the operator's pool, in MIST (as of the last listing, "
        "minus gas paid since; absent until the pool was first listed).",
    )


def _gas_usable_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "atoma_operator_gas_pool_usable_coins",
        "Gas coins in the pool that can pay for a transaction (free or leased; not withheld "
        "as suspect after an unknown outcome).",
    )


STATE = _StateCollector()
REGISTRY.register(STATE)


def track(*, conditions: ConditionCounts | None, gas: GasReader | None) -> None:
    """Read resource counts and gas-pool numbers from these sources on every scrape (the
    operator's runtime calls it once, on its event loop; a later call replaces them)."""
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    STATE.bind(loop, conditions, gas)


def report_leadership(leading: Callable[[], bool]) -> None:
    """atoma_operator_leader reads `leading()` at scrape time (leader election on)."""
    LEADER.set_function(lambda: 1.0 if leading() else 0.0)


def report_follower_lag(lag: Callable[[], float]) -> None:
    """atoma_operator_follower_lag_seconds reads `lag()` at scrape time."""
    FOLLOWER_LAG.set_function(lag)


def catalogue() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every atoma_operator_* family, also those without a sample yet (the gas pool
    before its first listing): name -> (type, label names). For docs and tests."""
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    collectors = REGISTRY._names_to_collectors  # type: ignore[attr-defined]
    for family in [*REGISTRY.collect(), *STATE.describe()]:
        if family.name.startswith("atoma_operator_"):
            owner = collectors.get(family.name)
            labels = getattr(owner, "_labelnames", ()) or getattr(family, "_labelnames", ())
            out[family.name] = (family.type, tuple(labels))
    return out


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _initialise() -> None:
    """Every known label set gets its 0 sample now, not at its first event."""
    for kind in KINDS:
        for per_kind in (TX_SUBMITTED, TX_SUCCEEDED, TX_RETRIES, GAS_SPENT, TX_FINAL_LATENCY):
            per_kind.labels(kind)
    for step in FOLLOWER_STEPS:
        FOLLOWER_FAILURES.labels(step)
    for reason in CURSOR_RESET_REASONS:
        FOLLOWER_CURSOR_RESETS.labels(reason)
    for event in EVENT_NAMES:
        FOLLOWER_EVENTS.labels(event)
    for method in RPC_METHODS:
        CHAIN_RPC_CALLS.labels(method)
        for code in OUTAGE_CODES:
            CHAIN_RPC_ERRORS.labels(method, code)
    LEADER.set(1)  # no leader election: this replica acts (the elector reports otherwise)
    BUILD_INFO.labels(
        _version("atoma-operator"),
        platform.python_version(),
        _version("kopf"),
        _version("pysui"),
        _version("prometheus-client"),
    ).set(1)


_initialise()


def serve(port: int) -> Callable[[], None] | None:
    """Expose /metrics on `port` (0 disables it); returns the function that stops it.

    Stopping frees the port, so an operator restarted in the same process (tests,
    embedding) can bind it again, and a stopped operator no longer looks alive to scrapes.
    """
    if not port:
        return None
    server, thread = start_http_server(port, registry=REGISTRY)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
