"""Retention: delete final resources a while after they finished (off by default).

Like a Job's `ttlSecondsAfterFinished`: etcd stays bounded under steady settlement. What
matters outlives the resource: the claimed-stack view, the metrics and the Events; and
a GitOps tool re-creating a deleted resource sends nothing (its simulation finds the
ticket, the attestation check finds the attestation, before any intent). A resource is *finished* once every entry is final and
nothing is pending; its finish time is its conditions' latest transition.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from atoma_operator.kube import ObjectKey
from atoma_operator.registry import Finished

if TYPE_CHECKING:
    from atoma_operator.runtime import Runtime

log = logging.getLogger(__name__)


def due(
    finished_at: Mapping[ObjectKey, Finished], default_ttl: float | None, now: datetime
) -> list[tuple[ObjectKey, Finished]]:
    """The finished resources whose TTL (their own, else the default) has passed."""
    out = []
    for key, f in finished_at.items():
        ttl = f.ttl if f.ttl is not None else default_ttl
        if ttl is not None and (now - f.at).total_seconds() >= ttl:
            out.append((key, f))
    return out


async def run(runtime: Runtime, interval: float = 5.0) -> None:
    """Delete due resources until cancelled (a poll interval: deadlines are wall-clock)."""
    while True:
        try:
            now = datetime.now().astimezone()
            for key, f in due(
                runtime.registry.finished(), runtime.settings.ttl_seconds_after_finished, now
            ):
                if not runtime.ctx.may_submit():
                    break
                await runtime.kube.delete(key, uid=f.uid)
                runtime.registry.forget(key)
                log.info(
                    "%s %s/%s deleted: finished at %s", key.kind, key.namespace, key.name, f.at
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("retention pass failed; retrying in %.0fs", interval)
        await asyncio.sleep(interval)
