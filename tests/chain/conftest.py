"""The gateway's tests run against the in-process Sui stand-in (fixtures from localnet_plugin)."""

from localnet_plugin import localnet, sui_account  # noqa: F401
