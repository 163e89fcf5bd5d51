"""The baselines: the same try_settle_stack transactions without Kubernetes.

`bare` is the limit a hand-written pysui script reaches: one worker per gas coin, each
transaction built offline with the operator's own gateway, signed and executed, the gas
coin's next version taken from the effects. A node badge is an owned object in every
call, so two transactions of one badge can never be in flight together (the second
would equivocate the badge): workers queue on a per-badge lock, as the operator does.
`daemon` is the atoma-node daemon's pattern: one transaction at a time, and what the
Sui SDK resolves per call (the reference gas price, the gas coin's current version).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from atoma_operator.atoma import calls, hashing
from atoma_operator.atoma.dbobject import parse_atoma_db
from atoma_operator.sui.gateway import SuiGateway
from atoma_operator.sui.keys import parse_signer
from atoma_operator.sui.types import ObjectRef
from bench.env import PROOF_HEX, Chain


@dataclass(frozen=True)
class Job:
    badge_object_id: str
    stack_small_id: int


@dataclass
class BareResult:
    seconds: float
    executed: int
    failed: int
    latencies: list[float]  # per transaction: start of its work -> effects known


async def settle(
    chain: Chain,
    jobs: list[Job],
    *,
    sequential: bool,
    units: int = 10,
    progress: Callable[[int], None] | None = None,
) -> BareResult:
    """Settle every job's stack; returns wall time from the first build to the last effect."""
    signer = parse_signer(chain.dev["private_key"])
    gw = SuiGateway(chain.proc.grpc_url, signer, request_timeout=30, execute_timeout=60)
    try:
        db_raw = await gw.get_object_json(chain.info["atoma_db_id"])
        assert db_raw is not None
        extra = parse_atoma_db(db_raw).cross_validation_extra_nodes_count
        proof, leaf = hashing.settlement_commitment(
            hashing.parse_total_hash(PROOF_HEX), hashing.ProofScheme.NODE_SOFTWARE, extra
        )
        db = await gw.shared_object(chain.info["atoma_db_id"], mutable=True)
        random = await gw.shared_object(calls.RANDOM_OBJECT_ID, mutable=False)
        coins: asyncio.Queue[ObjectRef] = asyncio.Queue()
        listed = await gw.list_gas_coins()
        for coin in listed[: 1 if sequential else len(listed)]:
            coins.put_nowait(coin.ref)
        badge_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        todo: asyncio.Queue[Job] = asyncio.Queue()
        for job in jobs:
            todo.put_nowait(job)
        latencies: list[float] = []
        failed = 0
        price = await gw.reference_gas_price()

        async def one(job: Job) -> None:
            nonlocal failed, price
            began = time.monotonic()
            async with badge_locks[job.badge_object_id]:
                gas = await coins.get()
                try:
                    if sequential:  # what the SDK resolves on every call
                        price = await gw.reference_gas_price()
                        fresh = await gw.get_object_ref(gas.object_id)
                        gas = fresh or gas
                    badge = await gw.get_object_ref(job.badge_object_id)
                    assert badge is not None
                    call = calls.try_settle_stack(
                        chain.info["package_id"],
                        db,
                        badge,
                        job.stack_small_id,
                        units,
                        proof,
                        leaf,
                        random,
                    )
                    tx = await gw.build_and_sign(
                        call, gas_coin=gas, gas_price=price, gas_budget=50_000_000
                    )
                    outcome = await gw.execute(tx)
                    if not outcome.succeeded:
                        failed += 1
                    gas = outcome.gas_coin_after or gas
                finally:
                    coins.put_nowait(gas)
            latencies.append(time.monotonic() - began)
            if progress is not None:
                progress(1)

        async def worker() -> None:
            while not todo.empty():
                await one(todo.get_nowait())

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(coins.qsize())))
        return BareResult(time.monotonic() - started, len(latencies), failed, latencies)
    finally:
        await gw.close()
