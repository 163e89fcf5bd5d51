"""Execution through real pysui and real signatures: the rules a client can observe."""

from __future__ import annotations

import asyncio
import base64

import pysui.sui.sui_common.sui_commands as cmd
import pytest
from localnet_txhelpers import build_settle, execute, sign
from pysui.abstracts.client_keypair import SignatureScheme

from localnet_plugin import make_account
from sui_localnet.crypto import transaction_digest
from sui_localnet.testing import wait_for


@pytest.mark.parametrize(
    "scheme", [SignatureScheme.ED25519, SignatureScheme.SECP256K1, SignatureScheme.SECP256R1]
)
async def test_signed_move_call_executes_for_every_scheme(localnet, localnet_client, scheme):
    account = make_account(localnet, scheme)
    stack = localnet.create_stack(selected_node_id=account.badge.node_small_id)
    tx = await build_settle(localnet_client, localnet, account, stack)

    result = await execute(localnet_client, tx, [sign(account, tx)])

    assert result.is_ok(), result.result_string
    executed = result.result_data
    assert executed.effects.status.success
    assert executed.digest == transaction_digest(base64.b64decode(tx))
    assert [e.event_type.rsplit("::", 1)[-1] for e in executed.events.events] == [
        "StackTrySettleEvent"
    ]
    assert executed.events.events[0].json.to_dict()["stack_small_id"] == {"inner": str(stack)}
    coin = localnet.ledger.objects[account.coins[0].object_id]
    gas = executed.effects.gas_object
    assert (gas.output_version, gas.output_digest) == (coin.version, coin.digest)
    used = executed.effects.gas_used
    charged = used.computation_cost + used.storage_cost - used.storage_rebate
    assert coin.balance == account.coins[0].balance - charged
    assert localnet.ticket_json(stack)["num_claimed_compute_units"] == "10"


async def test_tampered_signature_is_rejected(localnet, localnet_client, sui_account):
    account = sui_account()
    stack = localnet.create_stack(selected_node_id=account.badge.node_small_id)
    tx = await build_settle(localnet_client, localnet, account, stack)
    raw = bytearray(base64.b64decode(sign(account, tx)))
    raw[5] ^= 0x01

    result = await execute(localnet_client, tx, [base64.b64encode(raw).decode()])

    assert not result.is_ok()
    assert "Signature is not valid" in str(result.result_string)
    assert localnet.ticket_json(stack) is None


async def test_signature_of_another_key_is_rejected(localnet, localnet_client, sui_account):
    account, intruder = sui_account(), sui_account()
    stack = localnet.create_stack(selected_node_id=account.badge.node_small_id)
    tx = await build_settle(localnet_client, localnet, account, stack)

    wrong = await execute(localnet_client, tx, [sign(intruder, tx)])
    extra = await execute(localnet_client, tx, [sign(account, tx), sign(intruder, tx)])

    assert "Required Signature from" in str(wrong.result_string)
    assert "Expect 1 signer signatures but got 2" in str(extra.result_string)
    assert localnet.executions(transaction_digest(base64.b64decode(tx))) == 0


async def test_high_s_ecdsa_signature_is_rejected(localnet, localnet_client):
    account = make_account(localnet, SignatureScheme.SECP256K1)
    stack = localnet.create_stack(selected_node_id=account.badge.node_small_id)
    tx = await build_settle(localnet_client, localnet, account, stack)
    raw = bytearray(base64.b64decode(sign(account, tx)))
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(raw[33:65], "big")
    raw[33:65] = (n - s).to_bytes(32, "big")  # the same signature, malleated to high-s

    result = await execute(localnet_client, tx, [base64.b64encode(raw).decode()])

    assert "high-s" in str(result.result_string)


async def test_resent_transaction_returns_same_effects_and_runs_once(
    localnet, localnet_client, sui_account
):
    account = sui_account()
    stack = localnet.create_stack(selected_node_id=account.badge.node_small_id)
    tx = await build_settle(localnet_client, localnet, account, stack)
    sig = sign(account, tx)

    first = await execute(localnet_client, tx, [sig])
    second = await execute(localnet_client, tx, [sig])

    assert first.result_data.digest == second.result_data.digest
    assert first.result_data.effects.gas_object == second.result_data.effects.gas_object
    assert localnet.executions(first.result_data.digest) == 1
    assert second.result_data.effects.status.success  # not a second, aborting settlement


async def test_lost_race_is_refused_and_the_winners_version_is_free_at_once(
    localnet, localnet_client, sui_account
):
    """Current Sui (post-consensus locking): only the loser is refused, nothing stays locked."""
    account = sui_account()
    node_id = account.badge.node_small_id
    stack_a, stack_b = (localnet.create_stack(selected_node_id=node_id) for _ in range(2))
    tx_a = await build_settle(localnet_client, localnet, account, stack_a)
    tx_b = await build_settle(localnet_client, localnet, account, stack_b)
    localnet.faults.execute_latency = 0.3
    digest_a = transaction_digest(base64.b64decode(tx_a))

    task_a = asyncio.create_task(execute(localnet_client, tx_a, [sign(account, tx_a)]))
    await wait_for(lambda: localnet.ledger.is_pending(digest_a))
    refused = await execute(localnet_client, tx_b, [sign(account, tx_b)])
    executed = await task_a
    localnet.faults.execute_latency = 0.0

    assert refused.result_string[0].name == "FAILED_PRECONDITION"
    assert "already locked by a different transaction" in str(refused.result_string)
    assert executed.result_data.effects.status.success
    tx_c = await build_settle(localnet_client, localnet, account, stack_b)  # fresh version
    after = await execute(localnet_client, tx_c, [sign(account, tx_c)])
    assert after.result_data.effects.status.success


async def test_strict_locks_keep_the_coin_until_the_epoch_ends(
    localnet, localnet_client, sui_account
):
    """The older rule, kept behind a switch: the raced-for object is refused all epoch."""
    localnet.ledger.strict_locks = True
    account = sui_account()
    node_id = account.badge.node_small_id
    stack_a, stack_b = (localnet.create_stack(selected_node_id=node_id) for _ in range(2))
    tx_a = await build_settle(localnet_client, localnet, account, stack_a)
    tx_b = await build_settle(localnet_client, localnet, account, stack_b)
    localnet.faults.execute_latency = 0.3
    digest_a = transaction_digest(base64.b64decode(tx_a))

    task_a = asyncio.create_task(execute(localnet_client, tx_a, [sign(account, tx_a)]))
    await wait_for(lambda: localnet.ledger.is_pending(digest_a))
    refused = await execute(localnet_client, tx_b, [sign(account, tx_b)])
    executed = await task_a
    localnet.faults.execute_latency = 0.0

    assert "already locked by a different transaction" in str(refused.result_string)
    assert executed.result_data.effects.status.success  # the first one still executes
    assert localnet.ticket_json(stack_b) is None
    tx_c = await build_settle(localnet_client, localnet, account, stack_b)  # fresh version
    locked = await execute(localnet_client, tx_c, [sign(account, tx_c)])
    assert "equivocated until the next epoch" in str(locked.result_string)

    localnet.advance_epoch()
    tx_d = await build_settle(localnet_client, localnet, account, stack_b)
    after = await execute(localnet_client, tx_d, [sign(account, tx_d)])
    assert after.result_data.effects.status.success


async def test_stale_object_version_is_rejected(localnet, localnet_client, sui_account):
    account = sui_account()
    node_id = account.badge.node_small_id
    stack_a, stack_b = (localnet.create_stack(selected_node_id=node_id) for _ in range(2))
    tx_a = await build_settle(localnet_client, localnet, account, stack_a)
    tx_b = await build_settle(localnet_client, localnet, account, stack_b)  # same coin version

    assert (await execute(localnet_client, tx_a, [sign(account, tx_a)])).is_ok()
    stale = await execute(localnet_client, tx_b, [sign(account, tx_b)])

    assert "is not available for consumption, current version" in str(stale.result_string)
    assert localnet.ticket_json(stack_b) is None
    assert not localnet.ledger.equivocated  # the first was final: no lock, just stale


async def test_gas_rules_reject_before_execution(localnet, localnet_client, sui_account):
    account = sui_account(coins=1, balance=10_000_000)
    stack = localnet.create_stack(selected_node_id=account.badge.node_small_id)
    over = await build_settle(localnet_client, localnet, account, stack, budget=20_000_000)
    under = await build_settle(localnet_client, localnet, account, stack, budget=999_999)
    cheap = await build_settle(localnet_client, localnet, account, stack, price=999)

    results = [await execute(localnet_client, t, [sign(account, t)]) for t in (over, under, cheap)]

    messages = [str(r.result_string) for r in results]
    assert "is lower than the needed amount: 20000000" in messages[0]
    assert "is lower than min: 1000000" in messages[1]
    assert "under reference gas price (RGP) 1000" in messages[2]
    assert localnet.ledger.objects[account.coins[0].object_id].version == 1


async def test_move_abort_is_charged_and_reported_like_sui(localnet, localnet_client, sui_account):
    account = sui_account()
    stack = localnet.create_stack(selected_node_id=account.badge.node_small_id, num_compute_units=5)
    tx = await build_settle(localnet_client, localnet, account, stack, units=6)

    result = await execute(localnet_client, tx, [sign(account, tx)])

    status = result.result_data.effects.status
    assert not status.success
    assert status.error.abort.abort_code == 312012025
    assert status.error.abort.location.module == "db"
    assert status.error.abort.location.function_name == "try_settle_stack"
    coin = localnet.ledger.objects[account.coins[0].object_id]
    assert coin.balance < account.coins[0].balance  # gas is charged for an abort
    assert result.result_data.events is None


async def test_simulate_reports_abort_without_charging(localnet, localnet_client, sui_account):
    account = sui_account()
    stack = localnet.create_stack(selected_node_id=account.badge.node_small_id, num_compute_units=5)
    tx = await build_settle(localnet_client, localnet, account, stack, units=6)
    before = localnet.ledger.objects[account.coins[0].object_id]

    result = await localnet_client.execute(command=cmd.SimulateTransaction(tx_bytestr=tx))

    effects = result.result_data.transaction.effects
    assert effects.status.error.abort.abort_code == 312012025
    assert effects.gas_used.computation_cost > 0
    assert localnet.ledger.objects[before.object_id] == before
    assert localnet.executions(transaction_digest(base64.b64decode(tx))) == 0


async def test_simulate_success_changes_nothing(localnet, localnet_client, sui_account):
    account = sui_account()
    stack = localnet.create_stack(selected_node_id=account.badge.node_small_id)
    tx = await build_settle(localnet_client, localnet, account, stack)

    result = await localnet_client.execute(command=cmd.SimulateTransaction(tx_bytestr=tx))

    assert result.result_data.transaction.effects.status.success
    assert localnet.ticket_json(stack) is None
    assert (
        await execute(localnet_client, tx, [sign(account, tx)])
    ).result_data.effects.status.success
