"""The Atoma package's two ids: the call target and the types' origin.

After a Sui package upgrade every version stays callable and a MoveCall runs the code of
the id it names, so calls target the latest version (`package_id` in settings). Type tags
keep the id of the version that defined the type: the `db` module's structs, its events
(and so ListEvents' type filter) and the dynamic-field keys of the ticket table
(`Wrapper<0x…::db::StackSmallId>`). With only one id, after an upgrade ticket reads find
nothing and no event matches. The type origin is read once from the chain (the AtomaDb
object's type names its defining package) unless settings override it.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from atoma_operator.sui.errors import ChainError

from .movejson import MoveJsonError, normalize_address

DB_TYPE_NAME = "db::AtomaDb"


class ObjectTypeReader(Protocol):
    async def get_object_type(self, object_id: str) -> str | None: ...


def defining_package(type_str: str, expected: str = DB_TYPE_NAME) -> str:
    """The address part of "0x…::db::AtomaDb"; ValueError when the type is another one."""
    head, _, rest = type_str.strip().partition("::")
    if rest.split("<", 1)[0] != expected:
        raise ValueError(f"expected a {expected} object, found type {type_str!r}")
    try:
        return normalize_address(head)
    except MoveJsonError as exc:
        raise ValueError(f"type {type_str!r} has no valid package address: {exc}") from None


class PackageIds:
    """Where callers get the Atoma package ids from (tickets, follower, event parsing)."""

    def __init__(
        self,
        chain: ObjectTypeReader,
        *,
        call_target: str,
        db_id: str,
        type_origin: str | None = None,
    ) -> None:
        self._chain = chain
        self._call_target = normalize_address(call_target)
        self._db_id = db_id
        self._type_origin = normalize_address(type_origin) if type_origin else None
        self._lock = asyncio.Lock()

    @property
    def call_target(self) -> str:
        """The package id MoveCalls name (the latest version)."""
        return self._call_target

    @property
    def known_type_origin(self) -> str | None:
        """The type origin if set or already discovered (no chain read)."""
        return self._type_origin

    async def type_origin(self) -> str:
        """The defining package id of the `db` types: settings, else read once from chain."""
        if self._type_origin is not None:
            return self._type_origin
        async with self._lock:
            if self._type_origin is None:
                type_str = await self._chain.get_object_type(self._db_id)
                if type_str is None:
                    raise ChainError(f"AtomaDb object {self._db_id} not found on chain")
                try:
                    self._type_origin = defining_package(type_str)
                except ValueError as exc:
                    raise ChainError(f"AtomaDb object {self._db_id}: {exc}") from None
        return self._type_origin
