"""pytest fixtures for the local Sui stand-in (wire with `pytest_plugins = ["tests.localnet_plugin"]`
or `pytest_plugins = ["localnet_plugin"]` in tests/conftest.py).

`localnet` is an in-process node on free ports (function scope: every test gets a fresh
chain); `localnet_process` is a subprocess node for kill/restart tests; `sui_account`
makes a funded key; `localnet_client` is a pysui gRPC client over plaintext.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pysui.abstracts.client_keypair import SignatureScheme
from pysui.sui.sui_crypto import create_new_keypair

from sui_localnet.node import BadgeInfo, LocalSui
from sui_localnet.objects import StoredObject
from sui_localnet.testing import LocalnetProcess, pysui_client, running_localnet


@dataclass
class SuiAccount:
    keypair: Any  # pysui SuiKeyPair
    address: str
    coins: list[StoredObject]
    badge: BadgeInfo | None = None


def make_account(
    node: LocalSui,
    scheme: SignatureScheme = SignatureScheme.ED25519,
    *,
    coins: int = 2,
    balance: int = 10 * 10**9,
    badge: bool = True,
) -> SuiAccount:
    _, keypair = create_new_keypair(scheme)
    from sui_localnet.crypto import address_of

    public = keypair.public_key.key_bytes
    address = address_of(int(scheme), bytes(public))
    minted = node.fund(address, balance, coins)
    return SuiAccount(keypair, address, minted, node.create_badge(address) if badge else None)


@pytest_asyncio.fixture(loop_scope="function")
async def localnet() -> AsyncIterator[LocalSui]:
    async with running_localnet(seed=7, admin_port=0) as node:
        yield node


@pytest.fixture
def sui_account(localnet: LocalSui) -> Callable[..., SuiAccount]:
    def factory(scheme: SignatureScheme = SignatureScheme.ED25519, **kw: Any) -> SuiAccount:
        return make_account(localnet, scheme, **kw)

    return factory


@pytest_asyncio.fixture(loop_scope="function")
async def localnet_client(localnet: LocalSui, tmp_path: Path) -> AsyncIterator[Any]:
    """A pysui client with one funded Ed25519 account (`client.account`)."""
    account = make_account(localnet)
    client = pysui_client(localnet.grpc_url, [account.keypair], config_dir=tmp_path / "pysui")
    await client._init_protocol()
    client.account = account
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def localnet_process(tmp_path: Path) -> Iterator[LocalnetProcess]:
    proc = LocalnetProcess(tmp_path, seed=11)
    try:
        yield proc
    finally:
        proc.stop()
