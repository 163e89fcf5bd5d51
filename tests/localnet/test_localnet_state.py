"""Snapshot round-trip in-process, and a subprocess node that is killed and restarted."""

from __future__ import annotations

import base64

import pysui.sui.sui_common.sui_commands as cmd
from localnet_txhelpers import build_settle, execute, sign

from localnet_plugin import make_account
from sui_localnet.crypto import transaction_digest
from sui_localnet.devkey import dev_key
from sui_localnet.testing import pysui_client, running_localnet


async def test_snapshot_round_trip_keeps_chain_and_dedupe(tmp_path):
    state = tmp_path / "state.json"
    async with running_localnet(seed=3, state_file=state) as node:
        account = make_account(node)
        stack = node.create_stack(selected_node_id=account.badge.node_small_id)
        client = pysui_client(node.grpc_url, [account.keypair], config_dir=tmp_path / "c1")
        await client._init_protocol()
        tx = await build_settle(client, node, account, stack)
        sig = sign(account, tx)
        first = await execute(client, tx, [sig])
        await client.close()
        before = {oid: o.digest for oid, o in node.ledger.objects.items()}

    async with running_localnet(seed=3, state_file=state) as node:
        client = pysui_client(node.grpc_url, [account.keypair], config_dir=tmp_path / "c2")
        await client._init_protocol()
        again = await execute(client, tx, [sig])
        looked_up = await client.execute(
            command=cmd.GetTransaction(digest=first.result_data.digest)
        )
        await client.close()
        assert {oid: o.digest for oid, o in node.ledger.objects.items()} == before
        assert again.result_data.digest == first.result_data.digest
        assert node.executions(first.result_data.digest) == 1
        assert looked_up.result_data.effects.status.success
        assert node.ticket_json(stack)["stack_small_id"] == {"inner": str(stack)}


async def test_subprocess_node_survives_kill_and_restart(localnet_process, tmp_path):
    info = localnet_process.start()
    key = dev_key(localnet_process.seed)
    assert info["dev_key"]["address"] == key.address
    client = pysui_client(info["grpc_url"], [key.keypair], config_dir=tmp_path / "c")
    await client._init_protocol()
    txn = await client.transaction(initial_sender=key.address)
    coin = await txn.split_coin(coin=txn.gas, amounts=[1234])
    await txn.transfer_objects(transfers=[coin], recipient=key.address)
    tx = await txn.build(gas_budget=5_000_000)
    digest = transaction_digest(base64.b64decode(tx))
    result = await client.execute(
        command=cmd.ExecuteTransaction(tx_bytestr=tx, sig_array=[key.keypair.new_sign_secure(tx)])
    )
    assert result.result_data.effects.status.success
    await client.close()

    localnet_process.restart()
    client = pysui_client(info["grpc_url"], [key.keypair], config_dir=tmp_path / "c2")
    await client._init_protocol()
    looked_up = await client.execute(command=cmd.GetTransaction(digest=digest))
    gas = await client.execute(command=cmd.GetGas(owner=key.address))
    await client.close()
    counters = await localnet_process.admin("/counters")

    assert looked_up.result_data.effects.status.success
    assert 1234 in [o.balance for o in gas.result_data.objects]
    assert counters["executions"] == {digest: 1}
