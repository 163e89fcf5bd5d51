"""Injected faults and counters, in-process and over the admin HTTP API."""

from __future__ import annotations

import base64

import aiohttp
import pysui.sui.sui_common.sui_commands as cmd
from localnet_txhelpers import build_settle, execute, sign

from sui_localnet.crypto import transaction_digest


async def test_unavailable_node_refuses_and_counts_calls(localnet, localnet_client):
    localnet.faults.set_unavailable(None)

    down = await localnet_client.execute(command=cmd.GetBasicCurrentEpochInfo())
    localnet.faults.clear()
    up = await localnet_client.execute(command=cmd.GetBasicCurrentEpochInfo())

    assert not down.is_ok() and "unavailable" in str(down.result_string)
    assert up.is_ok()
    assert localnet.faults.calls_while_down["GetEpoch"] == 1
    assert localnet.faults.calls["GetEpoch"] >= 2


async def test_lost_response_executes_once_and_resend_recovers(localnet, localnet_client):
    account = localnet_client.account
    stack = localnet.create_stack(selected_node_id=account.badge.node_small_id)
    tx = await build_settle(localnet_client, localnet, account, stack)
    digest = transaction_digest(base64.b64decode(tx))
    localnet.faults.lose_responses = 1

    lost = await execute(localnet_client, tx, [sign(account, tx)])
    looked_up = await localnet_client.execute(command=cmd.GetTransaction(digest=digest))
    resent = await execute(localnet_client, tx, [sign(account, tx)])

    assert not lost.is_ok()
    assert looked_up.result_data.effects.status.success
    assert resent.result_data.digest == digest
    assert localnet.executions(digest) == 1
    assert localnet.faults.lost_responses == [digest]


async def test_admin_http_api_drives_the_node(localnet):
    async with aiohttp.ClientSession(localnet.admin_url) as http:
        address = "0x" + "ab" * 32
        funded = await (
            await http.post("/fund", json={"address": address, "amount": 5, "count": 2})
        ).json()
        badge = await (await http.post("/badge", json={"owner": address})).json()
        stack = await (
            await http.post(
                "/stack", json={"selected_node_id": badge["node_small_id"], "num_compute_units": 10}
            )
        ).json()
        epoch = await (await http.post("/epoch/advance", json={})).json()
        faults = await (
            await http.post("/faults", json={"unavailable": True, "unavailable_seconds": 60})
        ).json()
        bad = await http.post("/badge", json={})
        info = await (await http.get("/info")).json()

    assert [c["balance"] for c in funded["coins"]] == [5, 5]
    assert localnet.model.badge(badge["object_id"]).owner == address
    assert localnet.model.stack(stack["stack_small_id"]).num_compute_units == 10
    assert epoch["epoch"] == localnet.ledger.epoch == 1
    assert faults["unavailable"] and localnet.faults.unavailable
    assert bad.status == 400
    assert info["atoma_db_id"] == localnet.atoma_db_id
