"""The state-database reader against a real PostgreSQL with the node's schema.

Rows are written as atoma-node writes them (INSERT, then `total_hash = total_hash || $1`
per served request); the operator reads them through the read-only role.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import asyncpg
import pytest

from atoma_dev.postgres import Postgres
from atoma_operator.atoma.hashing import ProofInputError, ProofScheme
from atoma_operator.reconcile.proofs import SEED_PREFIX, settlement_inputs, state_database_chunks
from atoma_operator.resources.proofs import StackProof
from atoma_operator.statedb import SslMode, StackHashReader, StateDatabaseUnavailable

pytestmark = pytest.mark.integration


def _new_stack(db: Postgres, total_hash: bytes = b"") -> int:
    """Insert a stack as the node does when it sees StackCreatedEvent; returns its id."""
    sid = secrets.randbelow(1 << 40)
    db.psql(
        "INSERT INTO stacks VALUES "
        f"({sid}, '0xowner', 'stack-{sid}', 1, 7, 1000, 10, 0, false, "
        f"'\\x{total_hash.hex()}'::bytea, 0)"
    )
    return sid


def _serve_request(db: Postgres, sid: int, request: bytes) -> bytes:
    """Append a request's 32-byte hash exactly as the node's state manager does."""
    digest = hashlib.blake2b(request, digest_size=32).digest()
    db.psql(
        "UPDATE stacks SET total_hash = total_hash || "
        f"'\\x{digest.hex()}'::bytea, num_total_messages = num_total_messages + 1 "
        f"WHERE stack_small_id = {sid}"
    )
    return digest


async def _refuse(namespace: str, kind: str, name: str, key: str) -> bytes:
    raise AssertionError("no ConfigMap read expected")


async def test_reader_returns_the_appended_hashes_and_the_same_proof(
    state_database: Postgres,
) -> None:
    sid = _new_stack(state_database)
    hashes = [_serve_request(state_database, sid, f"req {i}".encode()) for i in range(3)]
    reader = StackHashReader(state_database.reader_dsn, ssl_mode=SslMode.DISABLE)
    try:
        assert await reader.total_hash(sid) == b"".join(hashes)
        assert await reader.total_hash(sid + 1) is None
        assert await state_database_chunks(sid, reader.total_hash) == hashes
        from_db = await settlement_inputs(
            None,
            stack_small_id=sid,
            scheme=ProofScheme.CONTRACT,
            num_attestation_nodes=2,
            namespace="ns",
            read_value=_refuse,
            read_stack_hash=reader.total_hash,
        )
        inline = await settlement_inputs(
            StackProof(stack_small_id=sid, total_hash=b"".join(hashes).hex()),
            stack_small_id=sid,
            scheme=ProofScheme.CONTRACT,
            num_attestation_nodes=2,
            namespace="ns",
            read_value=_refuse,
        )
        assert from_db == inline
    finally:
        await reader.close()


@pytest.mark.parametrize(
    ("total_hash", "reason"),
    [(None, "NotFound"), (b"", "Empty"), (b"\x01" * 40, "NotMultipleOf32")],
    ids=["missing-row", "empty", "not-multiple-of-32"],
)
async def test_bad_rows_give_the_seed_error(
    state_database: Postgres, total_hash: bytes | None, reason: str
) -> None:
    sid = _new_stack(state_database, total_hash) if total_hash is not None else 1 << 50
    reader = StackHashReader(state_database.reader_dsn, ssl_mode=SslMode.DISABLE)
    try:
        with pytest.raises(ProofInputError) as caught:
            await state_database_chunks(sid, reader.total_hash)
    finally:
        await reader.close()
    assert caught.value.reason == reason
    assert caught.value.message.startswith(f"{SEED_PREFIX} for stack {sid}")


async def test_reader_role_cannot_write(state_database: Postgres) -> None:
    sid = _new_stack(state_database, b"\x02" * 32)
    conn = await asyncpg.connect(state_database.reader_dsn, ssl=False)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE stacks SET total_hash = '' WHERE stack_small_id = $1", sid)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM stack_settlement_tickets")
    finally:
        await conn.close()


async def test_unreachable_database_is_unavailable_not_bad_input(
    state_database: Postgres,
) -> None:
    port = state_database.port
    assert port is not None
    closed = state_database.reader_dsn.replace(f":{port}/", ":1/")
    reader = StackHashReader(closed, ssl_mode=SslMode.DISABLE, timeout=5)
    with pytest.raises(StateDatabaseUnavailable) as caught:
        await reader.total_hash(1)
    assert state_database.reader_password not in str(caught.value)
    wrong_password = state_database.reader_dsn.replace(state_database.reader_password, "nope")
    reader = StackHashReader(wrong_password, ssl_mode=SslMode.DISABLE, timeout=5)
    with pytest.raises(StateDatabaseUnavailable):
        await reader.total_hash(1)


def test_server_runs_unprivileged_and_stops_by_pid() -> None:
    server = Postgres().start()
    try:
        assert server.is_running() and server.pid is not None
        if os.geteuid() == 0:  # PostgreSQL refuses root: it must run as another user
            uid_line = next(
                line
                for line in Path(f"/proc/{server.pid}/status").read_text().splitlines()
                if line.startswith("Uid:")
            )
            assert uid_line.split()[1] != "0"
        assert (
            server.psql("SELECT current_setting('server_version_num')::int >= 130000").strip()
            == "t"
        )
        assert server.psql("SELECT count(*) FROM stacks").strip() == "0"
    finally:
        server.stop()
    assert not server.is_running()
