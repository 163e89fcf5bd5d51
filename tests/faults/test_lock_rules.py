"""The operator loses a lock race on its gas coin and badge, and recovers — under the
current Sui rule (only the loser is refused; the winner's new version is free at once)
and under the older strict rule (the raced-for objects are refused until the epoch ends).

A rival transaction by the same key, on the same coin and badge versions, is held in
flight by the stand-in's execute latency while the operator submits: the operator's
transaction is refused with FAILED_PRECONDITION (the lock-conflict error).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from e2e_support import settlement
from fault_support import Fleet, poll

from atoma_operator.atoma import calls
from atoma_operator.atoma.hashing import ProofScheme, blake2b256, settlement_commitment
from atoma_operator.sui.gateway import SuiGateway
from atoma_operator.sui.keys import parse_signer
from atoma_operator.sui.types import TxOutcome

LATENCY = 4.0


async def _rival(fleet: Fleet, coin_id: str, stack: int) -> TxOutcome:
    chain = fleet.chain
    gateway = SuiGateway(chain.proc.grpc_url, parse_signer(chain.dev["private_key"]))
    try:
        badge = await gateway.get_object_ref(fleet.badges[0]["object_id"])
        coin = await gateway.get_object_ref(coin_id)
        assert badge is not None and coin is not None
        proof, leaf = settlement_commitment([blake2b256(b"rival")], ProofScheme.CONTRACT, 1)
        call = calls.try_settle_stack(
            chain.info["package_id"],
            await gateway.shared_object(chain.info["atoma_db_id"], mutable=True),
            badge,
            stack,
            10,
            proof,
            leaf,
            await gateway.shared_object(calls.RANDOM_OBJECT_ID, mutable=False),
        )
        tx = await gateway.build_and_sign(call, gas_coin=coin, gas_price=1000, gas_budget=10**8)
        return await gateway.execute(tx)
    finally:
        await gateway.close()


@pytest.mark.e2e
@pytest.mark.parametrize("strict", [False, True], ids=["current-sui", "strict-locks"])
def test_operator_recovers_from_a_lost_lock_race(fleet: Fleet, strict: bool) -> None:
    coin = fleet.chain.dev["gas_coins"][0]["object_id"]
    rival_stack, stack = fleet.add_stacks(2)
    fleet.chain.admin("/faults", {"strict_locks": strict})
    fleet.operator()
    fleet.chain.admin("/faults", {"execute_latency": LATENCY})
    result: dict[str, Any] = {}
    rival = threading.Thread(
        target=lambda: result.update(outcome=asyncio.run(_rival(fleet, coin, rival_stack)))
    )
    rival.start()
    poll(
        lambda: fleet.calls().get("ExecuteTransaction", 0) >= 1,
        timeout=30,
        what="the rival in flight",
        interval=0.05,
    )
    [name] = fleet.create([settlement("loser", fleet.ns, [stack], gas=coin)])
    poll(
        lambda: fleet.metric("atoma_operator_equivocation_refusals_total") >= 1,
        timeout=30,
        what="the operator's lock-conflict refusal",
    )
    rival.join(timeout=60)
    assert result["outcome"].succeeded  # the winner executed
    fleet.chain.admin("/faults", {"execute_latency": 0})
    if strict:
        fleet.chain.admin("/epoch/advance", {})  # the strict rule frees them only now
    objs = fleet.wait_ready([name], timeout=90)
    assert objs[name]["status"]["stacks"][0]["phase"] in ("Settling", "Settled")
