"""Turning a resource's proof input into the (committed proof, merkle leaf) pair to submit.

Inputs come inline, from a ConfigMap/Secret key, precomputed, or (proofSource:
StateDatabase) from the node's state database as the daemon reads them. Any problem becomes a
`ProofInputError` whose message starts with the seed's wording ("Failed to get stack
total hash"), so users of the daemon recognise it in the resource's conditions.

A referenced object or key that cannot be read (yet) is `ProofInputMissing`: GitOps
tools apply in any order, so the unit waits for it (`proof_input_waits`) until a
deadline instead of failing at once. About a Secret the messages say only "not found or
not permitted" / "does not hold a valid total hash": whoever created the resource may
not be allowed to read the Secret, and must not learn its existence, length or content
through the operator (a confused deputy).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from atoma_operator.atoma import hashing
from atoma_operator.atoma.hashing import ProofInputError, ProofScheme
from atoma_operator.reconcile.backoff import record_failure
from atoma_operator.reconcile.context import ReadStackHash, ReadValue
from atoma_operator.resources.proofs import StackProof, ValueEncoding
from atoma_operator.resources.submission import TransactionProgress

SEED_PREFIX = "Failed to get stack total hash"
WAITING_REASON = "WaitingForProofInput"
RECHECK_MAX_SECONDS = 30.0
"""Longest pause between two looks for a missing input, so it is picked up soon."""


class ProofInputMissing(ProofInputError):
    """The referenced ConfigMap/Secret or its key is not readable now; it may appear."""

    def __init__(self, message: str) -> None:
        super().__init__(WAITING_REASON, message)


def proof_input_waits(
    progress: TransactionProgress,
    error: ProofInputError,
    *,
    now: datetime,
    deadline_seconds: float,
    retry_base_seconds: float,
) -> bool:
    """True: keep waiting (backoff recorded in status); False: the unit fails now.

    The wait starts at the first miss (`waitingSince`, kept in status so a restart does
    not reset it); once `deadline_seconds` have passed the input counts as invalid and
    the error's message says how long the operator waited.
    """
    if not isinstance(error, ProofInputMissing):
        return False
    if progress.waiting_since is None:
        progress.waiting_since = now
    waited = (now - progress.waiting_since).total_seconds()
    if waited >= deadline_seconds:
        error.message += f" (waited {int(waited)} s, the limit is {int(deadline_seconds)} s)"
        return False
    deadline = progress.waiting_since + timedelta(seconds=deadline_seconds)
    record_failure(
        progress,
        WAITING_REASON,
        error.message,
        now=now,
        base=retry_base_seconds,
        cap=RECHECK_MAX_SECONDS,
    )
    if progress.next_retry_time is not None:  # the last look is at the deadline itself
        progress.next_retry_time = min(progress.next_retry_time, deadline)
    return True


async def state_database_chunks(
    stack_small_id: int, read_stack_hash: ReadStackHash | None
) -> list[bytes]:
    """The stack's request hashes from the state database, checked like inline input."""
    try:
        if read_stack_hash is None:
            raise ProofInputError(
                "StateDatabaseNotConfigured",
                "proofSource is StateDatabase but the operator has no state database "
                "(ATOMA_STATE_DATABASE_DSN)",
            )
        raw = await read_stack_hash(stack_small_id)
        if raw is None:
            raise ProofInputError("NotFound", "the state database has no row in stacks for it")
        return hashing.parse_total_hash(raw.hex())
    except ProofInputError as exc:
        raise ProofInputError(
            exc.reason, f"{SEED_PREFIX} for stack {stack_small_id}: {exc.message}"
        ) from None


async def total_hash_chunks(
    proof: StackProof, namespace: str, read_value: ReadValue
) -> list[bytes]:
    """The stack's 32-byte request hashes, from the inline value or the referenced key."""
    try:
        if proof.total_hash is not None:
            return hashing.parse_total_hash(proof.total_hash)
        source = proof.value_from
        if source is None:
            raise ProofInputError("NoTotalHash", "the proof has no total hash")
        ref = source.config_map_key_ref or source.secret_key_ref
        assert ref is not None  # the model guarantees exactly one
        if source.secret_key_ref is not None:
            return await _secret_chunks(
                namespace, ref.name, ref.key, source.effective_encoding, read_value
            )
        try:
            raw = await read_value(namespace, "ConfigMap", ref.name, ref.key)
        except LookupError as exc:
            raise ProofInputMissing(str(exc).strip("'\"")) from None
        return _decode(raw, source.effective_encoding, f"ConfigMap {ref.name} key {ref.key}")
    except ProofInputError as exc:
        _prefix(exc, proof.stack_small_id)
        raise


def _prefix(exc: ProofInputError, stack_small_id: int) -> None:
    """Add the seed's wording, keeping the exception's class (missing vs invalid)."""
    exc.message = f"{SEED_PREFIX} for stack {stack_small_id}: {exc.message}"
    exc.args = (exc.message,)


def _decode(raw: bytes, encoding: ValueEncoding, what: str) -> list[bytes]:
    if encoding is ValueEncoding.BINARY:
        return hashing.parse_total_hash(raw.hex())
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise ProofInputError("NotHex", f"{what} is not hex text") from None
    return hashing.parse_total_hash("".join(text.split()))


async def _secret_chunks(
    namespace: str, name: str, key: str, encoding: ValueEncoding, read_value: ReadValue
) -> list[bytes]:
    """Like a ConfigMap, but every failure says the same few words about the Secret."""
    what = f"Secret {name} key {key}"
    missing = False
    invalid = False
    chunks: list[bytes] = []
    try:
        raw = await read_value(namespace, "Secret", name, key)
        chunks = _decode(raw, encoding, what)
    except LookupError:
        missing = True
    except ProofInputError:
        invalid = True
    # Raised outside the `except` blocks: nothing about the value is chained.
    if missing:
        raise ProofInputMissing(f"{what}: not found or not permitted")
    if invalid:
        raise ProofInputError("InvalidSecretValue", f"{what} does not hold a valid total hash")
    return chunks


async def _chunks(
    proof: StackProof | None,
    stack_small_id: int,
    namespace: str,
    read_value: ReadValue,
    read_stack_hash: ReadStackHash | None,
) -> list[bytes]:
    if proof is None:
        return await state_database_chunks(stack_small_id, read_stack_hash)
    return await total_hash_chunks(proof, namespace, read_value)


async def settlement_inputs(
    proof: StackProof | None,
    *,
    stack_small_id: int,
    scheme: ProofScheme,
    num_attestation_nodes: int,
    namespace: str,
    read_value: ReadValue,
    read_stack_hash: ReadStackHash | None = None,
) -> tuple[bytes, bytes]:
    """(committed_stack_proof, stack_merkle_leaf) for the selected node (slot 0).

    `proof` None: the stack's total hash comes from the state database.
    """
    if proof is not None and proof.committed_proof is not None and proof.merkle_leaf is not None:
        return _precomputed(proof)
    chunks = await _chunks(proof, stack_small_id, namespace, read_value, read_stack_hash)
    return hashing.settlement_commitment(chunks, scheme, num_attestation_nodes)


async def attestation_inputs(
    proof: StackProof | None,
    *,
    stack_small_id: int,
    scheme: ProofScheme,
    slot: int,
    num_attestation_nodes: int,
    namespace: str,
    read_value: ReadValue,
    read_stack_hash: ReadStackHash | None = None,
) -> tuple[bytes, bytes]:
    """(committed_stack_proof, stack_merkle_leaf) for an attestation node at `slot`."""
    if proof is not None and proof.committed_proof is not None and proof.merkle_leaf is not None:
        return _precomputed(proof)
    chunks = await _chunks(proof, stack_small_id, namespace, read_value, read_stack_hash)
    return hashing.attestation_commitment(chunks, scheme, slot, num_attestation_nodes)


def _precomputed(proof: StackProof) -> tuple[bytes, bytes]:
    assert proof.committed_proof is not None and proof.merkle_leaf is not None
    try:
        return (
            hashing.parse_hash32(proof.committed_proof, "committedProof"),
            hashing.parse_hash32(proof.merkle_leaf, "merkleLeaf"),
        )
    except ProofInputError as exc:
        _prefix(exc, proof.stack_small_id)
        raise
