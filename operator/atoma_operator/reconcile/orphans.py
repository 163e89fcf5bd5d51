"""Resolving the unresolved transactions of resources that are gone.

A resource deleted (or pruned by GitOps) while one of its transactions' outcome is
unknown leaves that transaction's badge and gas coin held (`reconcile.holds`). Nobody
will resume it through a pass, so this loop does: it looks each orphan up and re-sends
the same signed bytes while its coin sits at the recorded version (Sui deduplicates by
digest, so this never makes a second transaction), and releases the holds once the
outcome is known. Its digest was recorded in the resource before it went away.
"""

from __future__ import annotations

import asyncio
import logging

from atoma_operator.reconcile.context import ReconcileContext
from atoma_operator.reconcile.submit import Executed, coin_release, resume
from atoma_operator.sui.gas import Release

log = logging.getLogger(__name__)


async def resolve_orphans(ctx: ReconcileContext) -> int:
    """One round over every orphan; returns how many are still unresolved."""
    left = 0
    for pending in ctx.holds.orphans():
        if not ctx.holds.may_have_been_sent(pending.digest):
            # Its record never landed, so it was never sent: nothing can execute it.
            ctx.gas.settle(pending.digest, pending.gas_coin.object_id, Release.unused())
            ctx.holds.release(pending.digest, recorded=False)
            continue
        step = await resume(
            pending,
            gateway=ctx.gateway,
            may_resend=ctx.may_submit(),
            confirm_expiry=ctx.confirm_expiry,
            coin_at_recorded=ctx.holds.found_again,
        )
        release = coin_release(step)
        if release is None or not ctx.holds.is_orphan(pending.digest):
            left += release is None
            continue
        ctx.gas.settle(pending.digest, pending.gas_coin.object_id, release)
        ctx.holds.release(pending.digest)
        outcome = step.outcome.status.value if isinstance(step, Executed) else type(step).__name__
        log.info("transaction %s of a deleted resource resolved: %s", pending.digest, outcome)
    return left


async def run(ctx: ReconcileContext, interval: float) -> None:
    """Resolve orphans until cancelled; idle rounds cost nothing but a look at the book."""
    delay = interval
    while True:
        try:
            left = await resolve_orphans(ctx)
            delay = interval if not left else min(delay * 2, ctx.settings.retry_max_seconds)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("resolving orphaned transactions failed; retrying in %.1fs", delay)
            delay = min(delay * 2, ctx.settings.retry_max_seconds)
        await asyncio.sleep(delay)  # a poll interval: the chain offers nothing to wait on
