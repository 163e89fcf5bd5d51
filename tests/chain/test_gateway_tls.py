"""https:// to a node with a private CA: trusted through the CA-bundle setting, refused
without it (the system trust store) or with another CA's bundle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from atoma_dev.pki import ServerPki, generate_server_pki
from atoma_operator.settings import Settings
from atoma_operator.sui.errors import ChainError, ChainUnavailable
from atoma_operator.sui.gateway import SuiGateway
from atoma_operator.sui.keys import parse_signer
from localnet_plugin import make_account
from sui_localnet.devkey import dev_key
from sui_localnet.node import LocalSui
from sui_localnet.testing import running_localnet


@pytest.fixture
def pki(tmp_path: Path) -> ServerPki:
    return generate_server_pki(tmp_path / "node", common_name="sui-localnet")


@pytest_asyncio.fixture(loop_scope="function")
async def tls_node(pki: ServerPki) -> AsyncIterator[LocalSui]:
    async with running_localnet(seed=4, tls=(pki.cert, pki.key)) as node:
        yield node


def _gateway(node: LocalSui, ca_file: Path | None) -> SuiGateway:
    key = make_account(node).keypair.to_bech32()
    return SuiGateway(node.grpc_url, parse_signer(key), request_timeout=5, ca_file=ca_file)


async def test_https_with_the_ca_bundle(tls_node: LocalSui, pki: ServerPki) -> None:
    assert tls_node.grpc_url.startswith("https://localhost:")
    gateway = _gateway(tls_node, pki.ca_cert)
    try:
        assert await gateway.current_epoch() == 0
        assert await gateway.list_gas_coins()
    finally:
        await gateway.close()


@pytest.mark.parametrize("trust", ["system-store", "other-ca"])
async def test_untrusted_certificate_is_refused(
    tls_node: LocalSui, tmp_path: Path, trust: str
) -> None:
    ca = None if trust == "system-store" else generate_server_pki(tmp_path / "x", common_name="x")
    gateway = _gateway(tls_node, ca.ca_cert if ca else None)
    try:
        with pytest.raises(ChainError, match="TLS certificate is not trusted") as info:
            await gateway.current_epoch()
        assert not isinstance(info.value, ChainUnavailable)  # a configuration error
    finally:
        await gateway.close()
    assert tls_node.faults.calls["GetEpoch"] == 0  # never reached the service


async def test_ca_file_setting_and_a_missing_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATOMA_SUI_CA_FILE", str(tmp_path / "ca.crt"))
    assert Settings().sui_ca_file == tmp_path / "ca.crt"
    signer = parse_signer(dev_key(0).bech32())
    with pytest.raises(ValueError, match="CA bundle"):
        SuiGateway("https://localhost:1", signer, ca_file=tmp_path / "missing.crt")
