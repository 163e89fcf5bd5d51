"""Two package ids after an upgrade: calls target the new id, types keep the original.

The stand-in runs in its upgraded-package mode (as the Atoma package on testnet): a
transaction calling the upgraded id emits events typed with the original id and creates
ticket entries keyed by `Wrapper<original::db::StackSmallId>`. Mixing the ids must find
nothing, so these tests fail if any reader uses the call target for types.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from atoma_operator.atoma import calls
from atoma_operator.atoma.events import StackTrySettleEvent, event_type, parse_event
from atoma_operator.atoma.hashing import ProofScheme, blake2b256, settlement_commitment
from atoma_operator.reconcile.tickets import TicketReader
from atoma_operator.sui.gateway import SuiGateway
from atoma_operator.sui.keys import parse_signer
from localnet_plugin import make_account
from sui_localnet.node import LocalSui
from sui_localnet.testing import running_localnet

CHUNKS = [blake2b256(b"request-1")]


@pytest_asyncio.fixture(loop_scope="function")
async def upgraded() -> AsyncIterator[LocalSui]:
    async with running_localnet(seed=5, upgraded_package=True) as node:
        yield node


async def _settle(node: LocalSui, *, package: str) -> tuple[SuiGateway, int, str]:
    account = make_account(node)
    assert account.badge is not None
    gateway = SuiGateway(node.grpc_url, parse_signer(account.keypair.to_bech32()))
    stack = node.create_stack(selected_node_id=account.badge.node_small_id)
    db = await gateway.shared_object(node.atoma_db_id, mutable=True)
    rnd = await gateway.shared_object(calls.RANDOM_OBJECT_ID, mutable=False)
    badge = await gateway.get_object_ref(account.badge.object_id)
    assert badge is not None
    proof, leaf = settlement_commitment(CHUNKS, ProofScheme.CONTRACT, 1)
    call = calls.try_settle_stack(package, db, badge, stack, 10, proof, leaf, rnd)
    coin = (await gateway.list_gas_coins())[0].ref
    tx = await gateway.build_and_sign(
        call, gas_coin=coin, gas_price=await gateway.reference_gas_price(), gas_budget=10**8
    )
    outcome = await gateway.execute(tx)
    assert outcome.succeeded, outcome.error
    return gateway, stack, outcome.digest


async def test_upgraded_mode_publishes_a_second_call_target(upgraded: LocalSui) -> None:
    info = upgraded.info()
    assert info["package_id"] == upgraded.call_package_id != upgraded.package_id
    assert info["original_package_id"] == upgraded.package_id


async def test_events_and_ticket_keys_use_the_type_origin(upgraded: LocalSui) -> None:
    gateway, stack, digest = await _settle(upgraded, package=upgraded.call_package_id)
    try:
        origin, target = upgraded.package_id, upgraded.call_package_id
        page = await gateway.list_events(
            event_type_prefix=event_type(origin, ""), after=None, limit=10
        )
        assert [e.tx_digest for e in page.events] == [digest]
        assert isinstance(parse_event(page.events[0], package_id=origin), StackTrySettleEvent)
        assert parse_event(page.events[0], package_id=target) is None
        wrong = await gateway.list_events(
            event_type_prefix=event_type(target, ""), after=None, limit=10
        )
        assert wrong.events == ()

        # Discovered from the AtomaDb object's type: the original id, not the call target.
        reader = TicketReader(gateway, package_id=target, db_id=upgraded.atoma_db_id)
        assert await reader.packages.type_origin() == origin
        assert reader.packages.call_target == target
        ticket = await reader.read(stack)
        assert ticket is not None and ticket.stack_small_id == stack

        mixed = TicketReader(
            gateway, package_id=target, db_id=upgraded.atoma_db_id, type_origin=target
        )
        assert await mixed.read(stack) is None
    finally:
        await gateway.close()


async def test_the_original_id_stays_callable(upgraded: LocalSui) -> None:
    gateway, _, _ = await _settle(upgraded, package=upgraded.package_id)
    await gateway.close()
