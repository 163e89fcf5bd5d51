"""Transaction helpers for the stand-in's tests (built and signed by real pysui)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pysui.sui.sui_common.sui_commands as cmd
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as sp

from localnet_plugin import SuiAccount
from sui_localnet.node import LocalSui
from sui_localnet.objects import StoredObject

PROOF = hashlib.blake2b(b"stack proof", digest_size=32).digest()


def gas_object(coin: StoredObject, balance: int | None = None) -> sp.Object:
    """The pysui gas-object form of a coin, so building sends no lookups for gas.

    `balance` lets a test claim more than the coin holds: the server must check."""
    return sp.Object(
        object_id=coin.object_id,
        version=coin.version,
        digest=coin.digest,
        balance=coin.balance if balance is None else balance,
        owner=sp.Owner(kind=sp.OwnerOwnerKind.ADDRESS, address=coin.owner.address),
    )


async def build_settle(
    client: Any,
    node: LocalSui,
    account: SuiAccount,
    stack: int,
    *,
    coin: StoredObject | None = None,
    budget: int = 50_000_000,
    price: int | None = None,
    units: int = 10,
    proof: bytes = PROOF,
    sender: str | None = None,
) -> str:
    """Base64 TransactionData of a try_settle_stack call, built by pysui."""
    assert account.badge is not None
    txn = await client.transaction(initial_sender=sender or account.address)
    if price is not None:
        txn.gas_price = price
    await txn.move_call(
        target=f"{node.package_id}::db::try_settle_stack",
        arguments=[
            node.atoma_db_id,
            account.badge.object_id,
            stack,
            units,
            list(proof),
            list(proof),
            "0x8",
        ],
    )
    current = node.ledger.objects[(coin or account.coins[0]).object_id]
    tx_b64: str = await txn.build(
        gas_budget=budget, use_gas_objects=[gas_object(current, max(current.balance or 0, budget))]
    )
    return tx_b64


def sign(account: SuiAccount, tx_b64: str) -> str:
    signature: str = account.keypair.new_sign_secure(tx_b64)
    return signature


async def execute(client: Any, tx_b64: str, signatures: list[str]) -> Any:
    return await client.execute(
        command=cmd.ExecuteTransaction(tx_bytestr=tx_b64, sig_array=signatures)
    )


def tx_bytes(tx_b64: str) -> bytes:
    return base64.b64decode(tx_b64)
