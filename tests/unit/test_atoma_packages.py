"""PackageIds: call target from settings, type origin overridden or read once from chain."""

from __future__ import annotations

import pytest

from atoma_operator.atoma.packages import PackageIds, defining_package
from atoma_operator.sui.errors import ChainError

ORIGIN = "0x" + "ab" * 32
TARGET = "0x" + "cd" * 32
DB = "0x" + "db" * 32


class Chain:
    def __init__(self, type_str: str | None) -> None:
        self.type_str = type_str
        self.reads = 0

    async def get_object_type(self, object_id: str) -> str | None:
        self.reads += 1
        return self.type_str


def test_defining_package_reads_the_address_of_the_db_type() -> None:
    assert defining_package("0xab::db::AtomaDb") == "0x" + "0" * 62 + "ab"
    with pytest.raises(ValueError, match="AtomaDb"):
        defining_package("0x2::coin::Coin<0x2::sui::SUI>")


async def test_discovered_once_and_kept() -> None:
    chain = Chain(f"{ORIGIN}::db::AtomaDb")
    ids = PackageIds(chain, call_target=TARGET, db_id=DB)
    assert ids.known_type_origin is None
    assert await ids.type_origin() == ORIGIN
    assert await ids.type_origin() == ORIGIN
    assert chain.reads == 1 and ids.call_target == TARGET


async def test_override_never_reads_the_chain() -> None:
    chain = Chain(None)
    ids = PackageIds(chain, call_target=TARGET, db_id=DB, type_origin=ORIGIN)
    assert await ids.type_origin() == ORIGIN and chain.reads == 0


@pytest.mark.parametrize("found", [None, "0x2::coin::Coin<0x2::sui::SUI>"])
async def test_missing_or_wrong_db_object_is_a_chain_error(found: str | None) -> None:
    ids = PackageIds(Chain(found), call_target=TARGET, db_id=DB)
    with pytest.raises(ChainError, match="AtomaDb"):
        await ids.type_origin()
    assert ids.known_type_origin is None
