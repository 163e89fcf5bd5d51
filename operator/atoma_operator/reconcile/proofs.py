"""Turning a resource's proof input into the (committed proof, merkle leaf) pair to submit.

Inputs come inline, from a ConfigMap/Secret key, precomputed, or (proofSource:
StateDatabase) from the node's state database as the daemon reads them. Any problem becomes a
`ProofInputError` whose message starts with the seed's wording ("Failed to get stack
total hash"), so users of the daemon recognise it in the resource's conditions.
"""

from __future__ import annotations

from atoma_operator.atoma import hashing
from atoma_operator.atoma.hashing import ProofInputError, ProofScheme
from atoma_operator.reconcile.context import ReadStackHash, ReadValue
from atoma_operator.resources.proofs import StackProof, ValueEncoding

SEED_PREFIX = "Failed to get stack total hash"


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
        kind = "ConfigMap" if source.config_map_key_ref is not None else "Secret"
        try:
            raw = await read_value(namespace, kind, ref.name, ref.key)
        except LookupError as exc:
            raise ProofInputError("ProofSourceNotFound", str(exc).strip("'\"")) from None
        if source.effective_encoding is ValueEncoding.BINARY:
            return hashing.parse_total_hash(raw.hex())
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise ProofInputError(
                "NotHex", f"{kind} {ref.name} key {ref.key} is not hex text"
            ) from None
        return hashing.parse_total_hash("".join(text.split()))
    except ProofInputError as exc:
        raise ProofInputError(
            exc.reason, f"{SEED_PREFIX} for stack {proof.stack_small_id}: {exc.message}"
        ) from None


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
        raise ProofInputError(
            exc.reason, f"{SEED_PREFIX} for stack {proof.stack_small_id}: {exc.message}"
        ) from None
