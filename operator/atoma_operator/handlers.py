"""kopf glue only: decorators, kopf settings, and mapping pass results to kopf's retries.

Each handler reads the object fresh, runs one pass of a plain state machine from
`atoma_operator.reconcile`, writes status once at the end (plus the write-ahead
intents the protocol needs), posts Events, and asks kopf to come back when a unit
is waiting out its backoff. kopf's own progress lives in annotations, not in status.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from typing import Any

import kopf
import urllib3
from kubernetes.client.exceptions import ApiException

from atoma_operator import metrics, retention
from atoma_operator.follower import Follower
from atoma_operator.kube import Conflict, NotFound, ObjectKey
from atoma_operator.leader import LeaderElector
from atoma_operator.logs import configure_logging
from atoma_operator.reconcile import orphans
from atoma_operator.reconcile.run import run_pass
from atoma_operator.registry import has_pending, is_final
from atoma_operator.resources.common import GROUP, VERSION
from atoma_operator.runtime import Runtime
from atoma_operator.settings import Settings

ANNOTATION_PREFIX = "atoma.network"
STL = "stacksettlements"
ATST = "attestations"

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
    """Configure kopf and build the shared runtime (chain gateway, gas pool, follower)."""
    config = Settings()
    configure_logging(config.log_format)
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.INFO
    settings.networking.request_timeout = 60
    settings.watching.server_timeout = 300
    if not settings.peering.clusterwide:
        # Serving named namespaces: kopf's namespace listing and CRD watch are cluster-wide
        # reads that namespaced RBAC does not grant. kopf would retry them for ~50 s at
        # start-up (logging 403s) and then fall back to exactly this mode anyway.
        settings.scanning.disabled = True
    runtime = await Runtime.create(config)
    memo.runtime = runtime
    if config.leader_election:
        elector = LeaderElector(
            runtime.kube.api_client,
            namespace=config.operator_namespace,
            name=config.leader_lease,
            identity=config.leader_identity,
        )
        await elector.acquire()  # a standby waits here; kopf watches nothing meanwhile
        runtime.ctx.may_submit = lambda: elector.is_leader
        memo.leader_task = asyncio.create_task(elector.keep(), name="atoma-leader-lease")
    memo.stop_metrics = metrics.serve(config.metrics_port)
    follower = Follower(runtime)
    memo.follower_task = asyncio.create_task(follower.run(), name="atoma-chain-follower")
    memo.orphans_task = asyncio.create_task(
        orphans.run(runtime.ctx, config.retry_base_seconds), name="atoma-orphans"
    )
    memo.retention_task = asyncio.create_task(retention.run(runtime), name="atoma-retention")


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
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


@kopf.index(GROUP, VERSION, STL)
def index_settlement(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Feeds the registry before any handler runs: kopf holds every handler until the
    initial listing is indexed, so after a restart the transactions recorded in any
    resource's status hold their badges before a new transaction can be built."""
    memo.runtime.registry.observe("StackSettlement", None, dict(body))


@kopf.index(GROUP, VERSION, ATST)
def index_attestation(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.runtime.registry.observe("Attestation", None, dict(body))


@kopf.on.event(GROUP, VERSION, STL)
def observe_settlement(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.runtime.registry.observe("StackSettlement", type, dict(body))


@kopf.on.event(GROUP, VERSION, ATST)
def observe_attestation(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.runtime.registry.observe("Attestation", type, dict(body))


@kopf.on.resume(GROUP, VERSION, STL)
@kopf.on.create(GROUP, VERSION, STL)
async def settle(
    namespace: str | None, name: str, body: kopf.Body, retry: int, memo: kopf.Memo, **_: Any
) -> None:
    key = ObjectKey("StackSettlement", namespace or "", name)
    await _run_pass(memo.runtime, key, body if retry == 0 else None, retry)


@kopf.on.resume(GROUP, VERSION, ATST)
@kopf.on.create(GROUP, VERSION, ATST)
async def attest(
    namespace: str | None, name: str, body: kopf.Body, retry: int, memo: kopf.Memo, **_: Any
) -> None:
    key = ObjectKey("Attestation", namespace or "", name)
    await _run_pass(memo.runtime, key, body if retry == 0 else None, retry)


async def _run_pass(
    runtime: Runtime, key: ObjectKey, body: kopf.Body | None, retry: int = 0
) -> None:
    """One reconcile pass (`reconcile.run`); raises kopf.TemporaryError to come back.

    The first attempt uses the body kopf delivered (fresh from the watch); a retry reads
    the object again, since our own writes may not have reached kopf's stream yet. A
    stale body costs nothing worse than a merge on the conditional status write.
    """
    if body is not None:
        if is_final(body) and not has_pending(body):
            return  # final: a resume after restart has nothing to do (cheap at 10k objects)
        obj: dict[str, Any] = copy.deepcopy(dict(body))
    else:
        try:
            obj = await runtime.kube.get(key)
        except NotFound:
            return
        except (ApiException, OSError, urllib3.exceptions.HTTPError) as exc:
            raise kopf.TemporaryError(f"Kubernetes API unavailable: {exc}", delay=2) from None
    try:
        outcome = await run_pass(runtime.ctx, runtime.kube, key, obj, waiting_passes=retry)
    except NotFound:
        return  # deleted meanwhile: its unresolved intents are orphans (reconcile.holds)
    except Conflict as exc:
        raise kopf.TemporaryError(f"{exc}; re-reading", delay=1) from None
    except (ApiException, OSError, urllib3.exceptions.HTTPError) as exc:
        # The apiserver restarting or unreachable: come back soon, not after kopf's 60 s.
        raise kopf.TemporaryError(f"Kubernetes API unavailable: {exc}", delay=2) from None
    except Exception as exc:  # unexpected: log it, retry with backoff rather than kopf's 60 s
        log.exception("%s %s/%s: pass failed", key.kind, key.namespace, key.name)
        delay = min(runtime.settings.retry_max_seconds, 2.0 * 2 ** min(retry, 8))
        raise kopf.TemporaryError(f"pass failed: {type(exc).__name__}", delay=delay) from None
    for notice in outcome.notices:
        kopf.event(obj, type=notice.type, reason=notice.reason, message=notice.message)  # type: ignore[arg-type]
    if outcome.retry_after is not None:
        raise kopf.TemporaryError("waiting for the chain", delay=max(0.5, outcome.retry_after))
