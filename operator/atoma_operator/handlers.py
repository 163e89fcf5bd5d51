"""kopf glue only: log-in, start-up and clean-up of the process.

Which kopf features are kept, and why (README "kopf"): kopf runs the process — signal
handling and graceful stop, the log-in (ServiceAccount or kubeconfig), start-up and
clean-up activities, and the liveness endpoint. The resources themselves are watched
and reconciled by `atoma_operator.controller` (a paged list+watch and a keyed work
queue), because kopf's per-object handlers write their progress and a copy of the spec
into every object and keep per-object memory: two extra API writes and a growing heap
per settled stack.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import kopf

from atoma_operator import metrics, retention
from atoma_operator.controller import Controller
from atoma_operator.follower import Follower
from atoma_operator.leader import LeaderElector
from atoma_operator.logs import configure_logging
from atoma_operator.reconcile import orphans
from atoma_operator.runtime import ConfigurationError, Runtime
from atoma_operator.settings import Settings

log = logging.getLogger(__name__)


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: the ServiceAccount; elsewhere: $KUBECONFIG, read at login time."""
    info: kopf.ConnectionInfo | None = kopf.login_with_service_account(
        **kwargs
    ) or kopf.login_with_kubeconfig(**kwargs)
    return info


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Build the shared runtime, wait for leadership, then start the workers."""
    config = Settings()
    configure_logging(config.log_format, config.log_level)
    settings.posting.enabled = False  # Events come from the operator itself, one component
    settings.networking.request_timeout = 60
    if not settings.peering.clusterwide:
        # Serving named namespaces: kopf's namespace listing and CRD watch are cluster-wide
        # reads that namespaced RBAC does not grant.
        settings.scanning.disabled = True
        if not config.namespaces:
            raise kopf.PermanentError(
                "kopf was started for named namespaces (-n) but ATOMA_NAMESPACES is empty: "
                "set ATOMA_NAMESPACES (or use `atoma-operator run --namespace`)"
            )
    try:
        runtime = await Runtime.create(config)
    except ConfigurationError as exc:
        raise kopf.PermanentError(str(exc)) from None
    memo.runtime = runtime
    # Before the leader wait: a standby serves /metrics too (atoma_operator_leader 0).
    memo.stop_metrics = metrics.serve(config.metrics_port)
    if config.leader_election:
        elector = LeaderElector(
            runtime.kube.api_client,
            namespace=config.operator_namespace,
            name=config.leader_lease,
            identity=config.leader_identity,
        )
        await elector.acquire()  # a standby waits here; nothing is watched meanwhile
        runtime.ctx.may_submit = lambda: elector.is_leader
        memo.leader_task = asyncio.create_task(elector.keep(), name="atoma-leader-lease")
    controller = Controller(
        runtime,
        config.namespaces if not settings.peering.clusterwide else None,
        workers=config.reconcile_workers,
    )
    memo.controller = controller
    await controller.start()  # lists every resource before the first pass
    follower = Follower(runtime)
    memo.follower_task = asyncio.create_task(follower.run(), name="atoma-chain-follower")
    memo.orphans_task = asyncio.create_task(
        orphans.run(runtime.ctx, config.retry_base_seconds), name="atoma-orphans"
    )
    memo.retention_task = asyncio.create_task(retention.run(runtime), name="atoma-retention")


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    controller: Controller | None = getattr(memo, "controller", None)
    if controller is not None:
        await controller.stop()
    for name in ("follower_task", "orphans_task", "retention_task", "leader_task"):
        task: asyncio.Task[None] | None = getattr(memo, name, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    runtime: Runtime | None = getattr(memo, "runtime", None)
    if runtime is not None:
        await runtime.close()
    stop_metrics: Callable[[], None] | None = getattr(memo, "stop_metrics", None)
    if stop_metrics is not None:
        await asyncio.to_thread(stop_metrics)  # shutdown() waits for the serving loop
