"""The consensus-latency model: which transactions wait, how long, and that waits overlap.

No test measures time: the model's sleep is replaced by one that records the drawn waits
(and, for the overlap test, blocks until released), and the model's counters are read.
"""

from __future__ import annotations

import asyncio
import base64
import random

import aiohttp
import pytest
from localnet_txhelpers import build_settle, execute, sign

from sui_localnet.__main__ import parse_args, provision
from sui_localnet.crypto import transaction_digest
from sui_localnet.latency import SharedObjectLatency
from sui_localnet.node import LocalSui
from sui_localnet.testing import wait_for


class RecordingSleep:
    """Records every wait; with `hold`, each wait blocks until `release` is set."""

    def __init__(self, *, hold: bool = False) -> None:
        self.waits: list[float] = []
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await self.release.wait()


def test_draws_are_seeded_uniform_and_never_negative():
    model = SharedObjectLatency(mean=0.4, jitter=0.05, seed=9)
    expected = random.Random(9)
    draws = [model.draw() for _ in range(200)]

    assert draws == [expected.uniform(0.4 - 0.05, 0.4 + 0.05) for _ in range(200)]
    assert all(0.35 <= d <= 0.45 for d in draws)
    wide = SharedObjectLatency(mean=0.1, jitter=0.5, seed=1)
    assert min(wide.draw() for _ in range(200)) == 0.0  # clamped, not negative
    assert SharedObjectLatency().draw() == 0.0  # off by default
    with pytest.raises(ValueError, match="must be >= 0"):
        model.configure(mean=-1)


async def test_off_by_default_no_transaction_waits(localnet, localnet_client):
    sleep = RecordingSleep()
    localnet.ledger.shared_latency.sleep = sleep
    account = localnet_client.account
    stack = localnet.create_stack(selected_node_id=account.badge.node_small_id)
    tx = await build_settle(localnet_client, localnet, account, stack)

    result = await execute(localnet_client, tx, [sign(account, tx)])

    assert result.result_data.effects.status.success
    assert sleep.waits == []
    assert localnet.counters()["shared_latency"]["applied"] == 0


async def test_shared_object_transaction_waits_the_drawn_latency(localnet, localnet_client):
    sleep = RecordingSleep()
    localnet.ledger.shared_latency.sleep = sleep
    localnet.set_latency(mean=0.4, jitter=0.1, seed=5)
    account = localnet_client.account
    stack = localnet.create_stack(selected_node_id=account.badge.node_small_id)
    tx = await build_settle(localnet_client, localnet, account, stack)

    result = await execute(localnet_client, tx, [sign(account, tx)])
    again = await execute(localnet_client, tx, [sign(account, tx)])  # deduplicated: no wait

    assert result.result_data.effects.status.success
    assert again.result_data.digest == result.result_data.digest
    assert sleep.waits == [random.Random(5).uniform(0.4 - 0.1, 0.4 + 0.1)]
    counters = localnet.counters()["shared_latency"]
    assert counters["applied"] == 1
    assert counters["total_seconds"] == sleep.waits[0]


async def test_owned_only_transaction_does_not_wait(localnet, localnet_client):
    sleep = RecordingSleep()
    localnet.ledger.shared_latency.sleep = sleep
    localnet.set_latency(mean=0.4)
    account = localnet_client.account
    txn = await localnet_client.transaction(initial_sender=account.address)
    coin = await txn.split_coin(coin=txn.gas, amounts=[1234])
    await txn.transfer_objects(transfers=[coin], recipient=account.address)
    tx = await txn.build(gas_budget=5_000_000)

    result = await execute(localnet_client, tx, [sign(account, tx)])

    assert result.result_data.effects.status.success
    assert sleep.waits == []


async def test_transactions_of_different_badges_wait_together(
    localnet, localnet_client, sui_account
):
    """Only owned-object conflicts serialise: two badges' transactions are in flight at once."""
    sleep = RecordingSleep(hold=True)
    localnet.ledger.shared_latency.sleep = sleep
    localnet.set_latency(mean=0.4)
    first, second = localnet_client.account, sui_account()
    txs = []
    for account in (first, second):
        stack = localnet.create_stack(selected_node_id=account.badge.node_small_id)
        tx = await build_settle(localnet_client, localnet, account, stack)
        txs.append((account, tx))

    tasks = [
        asyncio.create_task(execute(localnet_client, tx, [sign(account, tx)]))
        for account, tx in txs
    ]
    await wait_for(lambda: localnet.ledger.shared_latency.in_flight == 2)
    pending = [
        localnet.ledger.is_pending(transaction_digest(base64.b64decode(tx))) for _, tx in txs
    ]
    sleep.release.set()
    results = await asyncio.gather(*tasks)

    assert pending == [True, True]
    assert [r.result_data.effects.status.success for r in results] == [True, True]
    assert localnet.counters()["shared_latency"]["max_in_flight"] == 2


async def test_admin_api_configures_the_latency(localnet):
    async with aiohttp.ClientSession(localnet.admin_url) as http:
        configured = await (
            await http.post("/latency", json={"mean": 0.4, "jitter": 0.05, "seed": 3})
        ).json()
        refused = await http.post("/latency", json={"mean": -0.1})
        shown = await (await http.get("/latency")).json()
        off = await (await http.post("/latency", json={"mean": 0})).json()

    assert (configured["mean"], configured["jitter"], configured["seed"]) == (0.4, 0.05, 3)
    assert refused.status == 400
    assert shown["mean"] == 0.4
    assert (off["mean"], off["jitter"]) == (0.0, 0.05)
    assert not localnet.ledger.shared_latency.enabled


def test_cli_flags_configure_latency_and_badges():
    args = parse_args(
        ["--shared-latency", "0.4", "--shared-latency-jitter", "0.05", "--badges", "3"]
    )
    node = LocalSui(
        seed=4,
        shared_latency=args.shared_latency,
        shared_latency_jitter=args.shared_latency_jitter,
        latency_seed=args.latency_seed,
    )
    info = provision(node, args)

    assert node.ledger.shared_latency.status()["mean"] == 0.4
    assert node.ledger.shared_latency.seed == 4  # defaults to --seed
    assert len(info["dev_key"]["badges"]) == 3
    assert len(info["dev_key"]["stacks"]) == 3 * args.stacks
    assert parse_args([]).shared_latency == 0.0
    with pytest.raises(SystemExit):
        parse_args(["--badges", "0"])
    with pytest.raises(SystemExit):
        parse_args(["--shared-latency", "-1"])
