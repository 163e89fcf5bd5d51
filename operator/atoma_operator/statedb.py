"""Reading stacks' total hashes from the node's state database (atoma-state, PostgreSQL).

What the daemon does before settling: `SELECT total_hash FROM stacks WHERE
stack_small_id ...`. Here through a read-only role, one parameterised query, and a
small asyncpg pool opened on first use, so the operator starts (and reports
StateDatabaseUnavailable on the resources that need it) while the database is down.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Final

import asyncpg

if TYPE_CHECKING:
    from atoma_operator.settings import Settings

STATE_DATABASE_UNAVAILABLE: Final = "StateDatabaseUnavailable"
"""The status reason (and Reconciling condition reason) while the database is down."""
QUERY: Final = (
    "SELECT stack_small_id, total_hash FROM stacks WHERE stack_small_id = ANY($1::bigint[])"
)


class SslMode(StrEnum):
    """libpq's sslmode values that make sense for a client of a remote database."""

    DISABLE = "disable"
    PREFER = "prefer"
    REQUIRE = "require"
    VERIFY_CA = "verify-ca"
    VERIFY_FULL = "verify-full"


class StateDatabaseUnavailable(RuntimeError):
    """The database could not be reached or refused us: retry later, sign nothing."""


def ssl_option(mode: SslMode, root_cert: Path | None) -> ssl.SSLContext | str | bool:
    """asyncpg's `ssl=` for a mode; a CA file turns verify-* into an explicit context."""
    if mode is SslMode.DISABLE:
        return False
    if root_cert is not None and mode in (SslMode.VERIFY_CA, SslMode.VERIFY_FULL):
        context = ssl.create_default_context(cafile=str(root_cert))
        context.check_hostname = mode is SslMode.VERIFY_FULL
        return context
    return mode.value


class StackHashReader:
    """Pooled, read-only access to `stacks.total_hash`.

    The DSN carries the credentials and is never logged or put in an error message.
    """

    def __init__(
        self,
        dsn: str,
        *,
        ssl_mode: SslMode = SslMode.PREFER,
        root_cert: Path | None = None,
        max_connections: int = 4,
        timeout: float = 10.0,
    ) -> None:
        self._dsn = dsn
        self._ssl = ssl_option(ssl_mode, root_cert)
        self._max = max_connections
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _get_pool(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    dsn=self._dsn,
                    min_size=0,
                    max_size=self._max,
                    timeout=self._timeout,
                    command_timeout=self._timeout,
                    ssl=self._ssl,
                    # Read-only session: a misconfigured role still cannot write.
                    server_settings={"default_transaction_read_only": "on"},
                )
            return self._pool

    async def total_hashes(self, stack_small_ids: Iterable[int]) -> dict[int, bytes]:
        """stack_small_id -> total_hash for the ids that have a row (missing ids absent)."""
        ids = sorted(set(stack_small_ids))
        try:
            pool = await self._get_pool()
            rows = await pool.fetch(QUERY, ids, timeout=self._timeout)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StateDatabaseUnavailable(
                f"state database unavailable: {type(exc).__name__}: {_safe(exc)}"
            ) from None
        return {int(row["stack_small_id"]): bytes(row["total_hash"]) for row in rows}

    async def total_hash(self, stack_small_id: int) -> bytes | None:
        """One stack's total hash, or None when the table has no row for it."""
        return (await self.total_hashes([stack_small_id])).get(stack_small_id)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def from_settings(settings: Settings) -> StackHashReader | None:
    """The reader the operator's settings configure, or None without a DSN."""
    if settings.state_database_dsn is None:
        return None
    return StackHashReader(
        settings.state_database_dsn.get_secret_value(),
        ssl_mode=settings.state_database_sslmode,
        root_cert=settings.state_database_root_cert,
        max_connections=settings.state_database_max_connections,
    )


def _safe(exc: BaseException) -> str:
    """The error text, cut short; asyncpg's messages name hosts and roles, not passwords."""
    return str(exc).splitlines()[0][:200] if str(exc) else "no detail"
