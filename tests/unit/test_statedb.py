"""The state-database reader's configuration: TLS options and the DSN kept secret."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from atoma_operator import statedb
from atoma_operator.settings import Settings
from atoma_operator.statedb import SslMode, ssl_option

CA = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")


def test_ssl_modes_map_to_asyncpg() -> None:
    assert ssl_option(SslMode.DISABLE, None) is False
    assert ssl_option(SslMode.REQUIRE, None) == "require"
    assert ssl_option(SslMode.VERIFY_FULL, None) == "verify-full"


@pytest.mark.skipif(not CA.is_file(), reason="no system CA bundle to load")
def test_a_ca_bundle_gives_a_verifying_context() -> None:
    full = ssl_option(SslMode.VERIFY_FULL, CA)
    ca_only = ssl_option(SslMode.VERIFY_CA, CA)
    assert isinstance(full, ssl.SSLContext) and full.check_hostname
    assert isinstance(ca_only, ssl.SSLContext) and not ca_only.check_hostname
    assert ca_only.verify_mode is ssl.CERT_REQUIRED


def test_reader_only_when_configured_and_dsn_never_printed() -> None:
    assert statedb.from_settings(Settings()) is None
    settings = Settings(state_database_dsn="postgresql://r:hunter2@db/atoma")  # type: ignore[arg-type]
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())
    assert statedb.from_settings(settings) is not None
