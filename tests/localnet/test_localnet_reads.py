"""Reads the gateway and the follower rely on, through pysui's gRPC client."""

from __future__ import annotations

import pysui.sui.sui_common.sui_commands as cmd
import pysui.sui.sui_grpc.pgrpc_requests as rn
import pytest
from localnet_txhelpers import build_settle, execute, sign
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as sp

from sui_localnet.objects import SUI_COIN_TYPE


async def _settle(client, node, account, n):
    digests = []
    for _ in range(n):
        stack = node.create_stack(selected_node_id=account.badge.node_small_id)
        tx = await build_settle(client, node, account, stack)
        result = await execute(client, tx, [sign(account, tx)])
        digests.append(result.result_data.digest)
    return digests


async def _list_events(client, node, *, after=None, limit=None):
    flt = sp.EventFilter(
        terms=[
            sp.EventTerm(
                literals=[
                    sp.EventLiteral(
                        event_type=sp.EventTypeFilter(event_type=f"{node.package_id}::db")
                    )
                ]
            )
        ]
    )
    request = rn.ListEvents(event_filter=flt, options=sp.QueryOptions(limit=limit, after=after))
    result = await client.execute_grpc_request(request=request)
    assert result.is_ok(), result.result_string
    return [frame async for frame in result.result_data]


async def test_events_are_read_in_order_with_a_resumable_cursor(localnet, localnet_client):
    account = localnet_client.account
    digests = await _settle(localnet_client, localnet, account, 3)

    page = await _list_events(localnet_client, localnet, limit=2)
    assert [f.event.transaction_digest for f in page] == digests[:2]
    assert page[-1].end.reason == sp.QueryEndReason.ITEM_LIMIT
    assert page[0].event.json.to_dict()["num_claimed_compute_units"] == "10"

    rest = await _list_events(localnet_client, localnet, after=page[-1].watermark.cursor)
    assert [f.event.transaction_digest for f in rest if f.event] == digests[2:]
    assert rest[-1].end.reason == sp.QueryEndReason.LEDGER_TIP and rest[-1].event is None

    tip = rest[-1].watermark.cursor
    assert [
        f.event for f in await _list_events(localnet_client, localnet, after=tip) if f.event
    ] == []
    newer = await _settle(localnet_client, localnet, account, 1)
    resumed = await _list_events(localnet_client, localnet, after=tip)
    assert [f.event.transaction_digest for f in resumed if f.event] == newer
    assert resumed[0].event.checkpoint == localnet.ledger.transactions[newer[0]].checkpoint


async def test_event_filter_excludes_other_types(localnet, localnet_client):
    await _settle(localnet_client, localnet, localnet_client.account, 1)
    flt = sp.EventFilter(
        terms=[
            sp.EventTerm(
                literals=[
                    sp.EventLiteral(
                        event_type=sp.EventTypeFilter(
                            event_type=f"{localnet.package_id}::db::StackSettlementTicketEvent"
                        )
                    )
                ]
            )
        ]
    )
    result = await localnet_client.execute_grpc_request(request=rn.ListEvents(event_filter=flt))
    frames = [f async for f in result.result_data]
    assert [f.event for f in frames if f.event] == []
    assert frames[-1].end.reason == sp.QueryEndReason.LEDGER_TIP


async def test_transaction_lookup_reports_effects_and_checkpoint(localnet, localnet_client):
    [digest] = await _settle(localnet_client, localnet, localnet_client.account, 1)

    found = await localnet_client.execute(command=cmd.GetTransaction(digest=digest))
    missing = await localnet_client.execute(command=cmd.GetTransaction(digest="1" * 44))

    tx = found.result_data
    assert tx.effects.status.success
    assert tx.checkpoint == localnet.ledger.checkpoints[-1].sequence_number
    assert tx.transaction.sender == localnet_client.account.address
    assert missing.is_ok() and missing.result_data is None  # NOT_FOUND, as pysui maps it


async def test_objects_coins_epoch_and_balance(localnet, localnet_client):
    account = localnet_client.account
    coin = account.coins[0]

    obj = await localnet_client.execute(command=cmd.GetObject(object_id=coin.object_id))
    gas = await localnet_client.execute(command=cmd.GetGas(owner=account.address))
    epoch = await localnet_client.execute(command=cmd.GetBasicCurrentEpochInfo())
    balance = await localnet_client.execute(
        command=cmd.GetAddressCoinBalance(owner=account.address)
    )
    badge = await localnet_client.execute(command=cmd.GetObject(object_id=account.badge.object_id))

    assert (obj.result_data.version, obj.result_data.digest) == (coin.version, coin.digest)
    assert obj.result_data.json.to_dict() == {"id": coin.object_id, "balance": str(coin.balance)}
    assert sorted(o.object_id for o in gas.result_data.objects) == sorted(
        c.object_id for c in account.coins
    )
    assert all(o.object_type == SUI_COIN_TYPE for o in gas.result_data.objects)
    assert epoch.result_data.reference_gas_price == 1000
    assert balance.result_data.balance.balance == sum(c.balance for c in account.coins)
    assert badge.result_data.json.to_dict()["small_id"] == {
        "inner": str(account.badge.node_small_id)
    }

    localnet.advance_epoch(reference_gas_price=1500)
    later = await localnet_client.execute(command=cmd.GetBasicCurrentEpochInfo())
    assert (later.result_data.epoch, later.result_data.reference_gas_price) == (1, 1500)


async def test_get_function_describes_db_entry_points(localnet, localnet_client):
    result = await localnet_client.execute(
        command=cmd.GetFunction(
            package=localnet.package_id, module_name="db", function_name="try_settle_stack"
        )
    )
    unknown = await localnet_client.execute(
        command=cmd.GetFunction(package=localnet.package_id, module_name="db", function_name="nope")
    )

    params = result.result_data.function.parameters
    assert params[0].reference == sp.OpenSignatureReference.MUTABLE
    assert params[0].body.type_name.endswith("::db::AtomaDb")
    assert params[4].body.type == sp.OpenSignatureBodyType.VECTOR
    assert not unknown.is_ok()


async def test_read_mask_limits_returned_fields(localnet, localnet_client):
    coin = localnet_client.account.coins[0]
    result = await localnet_client.execute(command=cmd.GetObject(object_id=coin.object_id))
    narrow = await localnet_client.execute_grpc_request(
        request=rn.GetObject(object_id=coin.object_id, field_mask=["object_id", "version"])
    )

    assert result.result_data.owner is not None
    assert narrow.result_data.object.version == coin.version
    assert narrow.result_data.object.owner is None and narrow.result_data.object.json is None


@pytest.mark.parametrize(
    "mask",
    [["effects.status", "effects"], ["effects", "effects.status"], ["effects.*", "digest"]],
    ids=["narrow-first", "whole-first", "wildcard"],
)
async def test_overlapping_read_mask_paths_return_the_whole_field(localnet, localnet_client, mask):
    [digest] = await _settle(localnet_client, localnet, localnet_client.account, 1)
    result = await localnet_client.execute_grpc_request(
        request=rn.GetTransaction(digest=digest, field_mask=mask)
    )
    effects = result.result_data.transaction.effects
    assert effects.status.success
    assert effects.gas_used is not None and effects.changed_objects  # not cut to status


def test_mask_tree_whole_field_wins_over_narrower_paths() -> None:
    from sui_localnet.proto import ALL, mask_tree

    assert mask_tree(["effects.status", "effects"]) == {"effects": {ALL: {}}}
    assert mask_tree(["effects", "effects.status"]) == {"effects": {ALL: {}}}
    assert mask_tree(["effects.status", "digest"]) == {
        "effects": {"status": {ALL: {}}},
        "digest": {ALL: {}},
    }
    assert mask_tree(["*", "digest"]) is None


async def test_ticket_is_readable_through_its_dynamic_field_object(localnet, localnet_client):
    account = localnet_client.account
    stack = localnet.create_stack(selected_node_id=account.badge.node_small_id)
    tx = await build_settle(localnet_client, localnet, account, stack)
    await execute(localnet_client, tx, [sign(account, tx)])
    field_id = localnet.model.ticket_field_id(stack)

    entry = await localnet_client.execute(command=cmd.GetObject(object_id=field_id))
    ticket_id = entry.result_data.json.to_dict()["value"]
    ticket = await localnet_client.execute(command=cmd.GetObject(object_id=ticket_id))

    assert entry.result_data.owner.kind == sp.OwnerOwnerKind.OBJECT
    assert ticket.result_data.json.to_dict() == localnet.ticket_json(stack)
