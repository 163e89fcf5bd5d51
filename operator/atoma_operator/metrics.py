"""Prometheus metrics of the operator: one registry, names stable for dashboards and alerts.

Kept in one module so the Grafana dashboard in the chart and the tests that scrape
/metrics have a single place to look the names up.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

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
RESOURCES_BY_CONDITION = Gauge(
    "atoma_operator_resources",
    "Resources known to the operator, by kind and summarised condition.",
    (*KIND_LABELS, "condition"),  # Ready | Reconciling | Stalled
    registry=REGISTRY,
)
FOLLOWER_LAG = Gauge(
    "atoma_operator_follower_lag_seconds",
    "Seconds since the chain follower last reached the tip of the event stream.",
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
    "Follower passes that failed, by step (epoch, events, tickets).",
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

CLAIMED_STACKS = Gauge(
    "atoma_operator_claimed_stacks",
    "Claimed stacks retained per badge (node small id), by the seed's attestation_status.",
    ("node", "attestation_status"),
    registry=REGISTRY,
)


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
