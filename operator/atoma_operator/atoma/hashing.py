"""Proof and leaf hashing for Atoma stack settlement (blake2b-256 everywhere).

A stack's *total hash* is the concatenation of 32-byte per-request hashes. Those chunks are
the leaves of a merkle tree (taken as-is, not re-hashed); the slot leaves and the committed
proof are derived from its root. Two committed-proof schemes exist and disagree whenever the
contract sampled attestation nodes, so the scheme is an explicit choice (`ProofScheme`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from enum import StrEnum

HASH_LEN = 32
MAX_SLOT = 255  # a slot index is hashed as one byte


class ProofInputError(ValueError):
    """Proof input that can never produce a valid settlement (a user error, not transient).

    `reason` is a CamelCase word suitable for a Kubernetes condition reason.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class ProofScheme(StrEnum):
    """How the committed stack proof is computed; the values match the CRD's `proofScheme`."""

    NODE_SOFTWARE = "NodeSoftware"
    """What atoma-node submits: proof = leaf(0) = H(0x00 ‖ root)."""
    CONTRACT = "Contract"
    """What db.move checks once every sampled node attested: H(leaf_0 ‖ … ‖ leaf_n)."""


def blake2b256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=HASH_LEN).digest()


def _strip_hex(text: str, what: str) -> bytes:
    s = "".join(text.split())  # values from ConfigMaps are often wrapped over lines
    if s[:2].lower() == "0x":
        s = s[2:]
    if not s:
        raise ProofInputError("Empty", f"{what} is empty")
    if len(s) % 2:
        raise ProofInputError(
            "OddLength", f"{what} has an odd number of hex digits ({len(s)}): not whole bytes"
        )
    try:
        return bytes.fromhex(s)
    except ValueError:
        raise ProofInputError("NotHex", f"{what} is not hex") from None


def parse_total_hash(hex_text: str) -> list[bytes]:
    """Split a stack's total hash (hex, optional 0x) into its 32-byte chunks."""
    raw = _strip_hex(hex_text, "total hash")
    if len(raw) % HASH_LEN:
        raise ProofInputError(
            "NotMultipleOf32",
            f"total hash length is not a multiple of 32 bytes ({len(raw)} bytes)",
        )
    return [raw[i : i + HASH_LEN] for i in range(0, len(raw), HASH_LEN)]


def parse_hash32(hex_text: str, what: str = "hash") -> bytes:
    """Parse one 32-byte value (a proof or a leaf given directly) from hex."""
    raw = _strip_hex(hex_text, what)
    if len(raw) != HASH_LEN:
        raise ProofInputError("WrongLength", f"{what} must be 32 bytes, got {len(raw)}")
    return raw


def _check_chunks(chunks: Sequence[bytes]) -> None:
    if not chunks:
        raise ProofInputError("Empty", "total hash is empty: no chunks")
    for i, c in enumerate(chunks):
        if len(c) != HASH_LEN:
            raise ProofInputError("WrongLength", f"chunk {i} is {len(c)} bytes, not 32")


def merkle_root(chunks: Sequence[bytes]) -> bytes:
    """Merkle root over 32-byte chunks: parent = H(left ‖ right), an odd node moves up as-is."""
    _check_chunks(chunks)
    level = list(chunks)
    while len(level) > 1:
        nxt = [blake2b256(level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def leaf_for_slot(root: bytes, slot: int) -> bytes:
    """Leaf of slot k = H(byte(k) ‖ root); slot 0 is the selected node's."""
    if len(root) != HASH_LEN:
        raise ProofInputError("WrongLength", f"root must be 32 bytes, got {len(root)}")
    if not 0 <= slot <= MAX_SLOT:
        raise ProofInputError("SlotOutOfRange", f"slot {slot} does not fit in one byte")
    return blake2b256(bytes([slot]) + root)


def contract_leaves_vector(
    root: bytes, num_attestation_nodes: int, filled_slots: Sequence[int] | None = None
) -> bytes:
    """The ticket's `stack_merkle_leaves_vector` as the contract will hash it.

    It has `num_attestation_nodes + 1` slots of 32 bytes (the contract sizes it by its
    `cross_validation_extra_nodes_count`); slot 0 holds the selected node's leaf, slot i+1
    the leaf of the i-th requested attestation node, and slots nobody wrote stay zero.
    `filled_slots` (1-based attestation slots) defaults to all of them.
    """
    if num_attestation_nodes < 0:
        raise ValueError("num_attestation_nodes must be >= 0")
    filled = set(range(1, num_attestation_nodes + 1) if filled_slots is None else filled_slots)
    out = bytearray(leaf_for_slot(root, 0))
    for k in range(1, num_attestation_nodes + 1):
        out += leaf_for_slot(root, k) if k in filled else bytes(HASH_LEN)
    return bytes(out)


def committed_proof(root: bytes, scheme: ProofScheme, num_attestation_nodes: int = 1) -> bytes:
    """The committed stack proof for `root` under `scheme`.

    NodeSoftware: leaf(0), independent of sampling. The contract's final check then fails for
    every stack that got attestation nodes (H(leaf_0 ‖ leaf_1) != leaf_0): a dispute.

    Contract: H(leaf_0 ‖ leaf_1 ‖ … ‖ leaf_n) with n = `num_attestation_nodes`, which is
    the contract's `cross_validation_extra_nodes_count` (the ticket's leaf vector has n + 1
    slots; read n from AtomaDb, or from a ticket as `len(leaves) // 32 - 1`). The settler
    must commit before `try_settle_stack` draws the sample, so it commits to the case where
    every slot is filled by a distinct node. That is exact when nothing is sampled (no check
    ever runs) and when n distinct nodes are sampled and attest honestly; it is wrong, and a
    dispute follows, only when the contract found fewer than n eligible nodes or sampled a
    node twice (possible only for n >= 2, since sampling is with replacement) — those slots
    stay zero, and no commitment made in advance can know it. With the default n = 1 the
    Contract scheme is always consistent with the contract's check.
    """
    if scheme is ProofScheme.NODE_SOFTWARE:
        return leaf_for_slot(root, 0)
    return blake2b256(contract_leaves_vector(root, num_attestation_nodes))


def settlement_commitment(
    chunks: Sequence[bytes], scheme: ProofScheme, num_attestation_nodes: int = 1
) -> tuple[bytes, bytes]:
    """(committed_stack_proof, stack_merkle_leaf) for the selected node's try_settle_stack."""
    root = merkle_root(chunks)
    return committed_proof(root, scheme, num_attestation_nodes), leaf_for_slot(root, 0)


def attestation_commitment(
    chunks: Sequence[bytes], scheme: ProofScheme, slot: int, num_attestation_nodes: int = 1
) -> tuple[bytes, bytes]:
    """(committed_stack_proof, stack_merkle_leaf) for an attestation at `slot` (position + 1)."""
    if slot < 1:
        raise ProofInputError("SlotOutOfRange", f"attestation slot must be >= 1, got {slot}")
    root = merkle_root(chunks)
    return committed_proof(root, scheme, num_attestation_nodes), leaf_for_slot(root, slot)
