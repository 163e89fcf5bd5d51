"""proofSource: StateDatabase — proofs derived from stacks.total_hash, as the daemon does.

The reader is faked here (a dict); tests/integration/test_state_database.py runs the
real one against PostgreSQL.
"""

from __future__ import annotations

import pytest
from fakes import FakeClock
from pydantic import ValidationError
from test_reconcile_settlement import NS, TOTAL_HASH, World

from atoma_operator.atoma.hashing import ProofInputError, ProofScheme
from atoma_operator.reconcile.conditions import condition_status
from atoma_operator.reconcile.proofs import SEED_PREFIX, settlement_inputs
from atoma_operator.resources.proofs import StackProof
from atoma_operator.resources.stack_settlement import SettlementPhase, StackSettlementSpec
from atoma_operator.resources.submission import PROOF_SOURCE_MESSAGE, ProofSource
from atoma_operator.statedb import STATE_DATABASE_UNAVAILABLE, StateDatabaseUnavailable


class FakeStateDb:
    """stack_small_id -> total_hash; `down` makes every read fail as unreachable."""

    def __init__(self, rows: dict[int, bytes]) -> None:
        self.rows = rows
        self.down = False
        self.reads: list[int] = []

    async def __call__(self, stack_small_id: int) -> bytes | None:
        self.reads.append(stack_small_id)
        if self.down:
            raise StateDatabaseUnavailable("state database unavailable: ConnectionRefusedError")
        return self.rows.get(stack_small_id)


def db_spec(stacks: list[int]) -> StackSettlementSpec:
    return StackSettlementSpec(
        stack_small_ids=stacks,
        num_claimed_compute_units=100,
        proof_source=ProofSource.STATE_DATABASE,
    )


def world_with(db: FakeStateDb | None) -> World:
    w = World()
    w.ctx.read_stack_hash = db
    return w


async def _no_configmaps(namespace: str, kind: str, name: str, key: str) -> bytes:
    raise AssertionError("a state-database proof must not read ConfigMaps")


async def test_proof_from_the_state_database_equals_the_inline_one() -> None:
    db = FakeStateDb({6: bytes.fromhex(TOTAL_HASH)})
    for scheme in ProofScheme:
        from_db = await settlement_inputs(
            None,
            stack_small_id=6,
            scheme=scheme,
            num_attestation_nodes=2,
            namespace=NS,
            read_value=_no_configmaps,
            read_stack_hash=db,
        )
        inline = await settlement_inputs(
            StackProof(stack_small_id=6, total_hash=TOTAL_HASH),
            stack_small_id=6,
            scheme=scheme,
            num_attestation_nodes=2,
            namespace=NS,
            read_value=_no_configmaps,
        )
        assert from_db == inline


async def test_stack_named_only_by_id_is_settled() -> None:
    db = FakeStateDb({6: bytes.fromhex(TOTAL_HASH), 7: bytes.fromhex(TOTAL_HASH)})
    w = world_with(db)
    await w.run(db_spec([6, 7]))
    assert w.entry(6).phase is SettlementPhase.SETTLING
    assert w.entry(7).phase is SettlementPhase.SETTLING
    assert sorted(db.reads) == [6, 7]


@pytest.mark.parametrize(
    ("rows", "detail"),
    [
        ({}, "no row"),
        ({6: b""}, "empty"),
        ({6: b"\xab" * 33}, "32"),
    ],
    ids=["missing-row", "empty", "not-multiple-of-32"],
)
async def test_bad_state_database_row_fails_with_the_seed_error(
    rows: dict[int, bytes], detail: str
) -> None:
    w = world_with(FakeStateDb(rows))
    await w.run(db_spec([6]))
    e = w.entry(6)
    assert e.phase is SettlementPhase.FAILED
    assert e.reason == "InvalidProofInput"
    assert (e.last_error or "").startswith(f"{SEED_PREFIX} for stack 6")
    assert detail in (e.last_error or "")
    assert w.gw.calls["build_and_sign"] == 0 and w.gw.calls["execute"] == 0
    stalled = next(c for c in w.conditions() if c["type"] == "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "InvalidProofInput")


async def test_unconfigured_state_database_is_invalid_input() -> None:
    w = world_with(None)
    await w.run(db_spec([6]))
    assert w.entry(6).reason == "InvalidProofInput"
    assert "ATOMA_STATE_DATABASE_DSN" in (w.entry(6).last_error or "")


async def test_unreachable_database_backs_off_signs_nothing_then_settles() -> None:
    db = FakeStateDb({6: bytes.fromhex(TOTAL_HASH)})
    db.down = True
    w = world_with(db)
    assert isinstance(w.clock, FakeClock)
    spec = db_spec([6])
    first = await w.run(spec)
    e = w.entry(6)
    assert e.phase is SettlementPhase.PENDING
    assert e.reason == STATE_DATABASE_UNAVAILABLE
    assert e.next_retry_time is not None and first.retry_after is not None
    assert first.retry_after >= 4.0  # retry_base_seconds 5 with 10% jitter
    assert w.gw.calls["build_and_sign"] == 0 and w.gw.calls["execute"] == 0
    reconciling = next(c for c in w.conditions() if c["type"] == "Reconciling")
    assert (reconciling["status"], reconciling["reason"]) == ("True", STATE_DATABASE_UNAVAILABLE)
    assert condition_status(w.conditions(), "Stalled") == "False"

    # Before the backoff expires nothing is read again.
    await w.run(spec)
    assert db.reads == [6]

    db.down = False
    w.clock.advance(first.retry_after + 1)
    await w.run(spec)
    assert w.entry(6).phase is SettlementPhase.SETTLING


def test_proofs_are_omitted_exactly_when_the_source_is_the_state_database() -> None:
    proofs = [StackProof(stack_small_id=6, total_hash=TOTAL_HASH)]
    base = {"stack_small_ids": [6], "num_claimed_compute_units": 1}
    StackSettlementSpec.model_validate({**base, "proofs": proofs})
    StackSettlementSpec.model_validate({**base, "proof_source": "StateDatabase"})
    with pytest.raises(ValidationError, match="not both"):
        StackSettlementSpec.model_validate(
            {**base, "proofs": proofs, "proof_source": "StateDatabase"}
        )
    with pytest.raises(ValidationError, match="proofSource: StateDatabase"):
        StackSettlementSpec.model_validate(base)
    with pytest.raises(ValidationError, match="proofSource: StateDatabase"):
        StackSettlementSpec.model_validate({**base, "proof_source": "Spec"})
    assert "not both" in PROOF_SOURCE_MESSAGE


def test_proof_input_error_is_not_the_unavailable_error() -> None:
    # A bad row is final (InvalidProofInput); an outage is retried: distinct types.
    assert not issubclass(StateDatabaseUnavailable, ProofInputError)
