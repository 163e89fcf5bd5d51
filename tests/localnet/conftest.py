"""Fixtures for the stand-in's own tests, re-exported from tests/localnet_plugin.py
until the root conftest loads that plugin."""

from localnet_plugin import (  # noqa: F401
    localnet,
    localnet_client,
    localnet_process,
    sui_account,
)
