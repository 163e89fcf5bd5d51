"""Proof hashing: vectors built step by step with hashlib, independent of the implementation."""

from __future__ import annotations

import hashlib

import pytest

from atoma_operator.atoma.hashing import (
    ProofInputError,
    ProofScheme,
    attestation_commitment,
    committed_proof,
    contract_leaves_vector,
    leaf_for_slot,
    merkle_root,
    parse_hash32,
    parse_total_hash,
    settlement_commitment,
)


def h(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def chunks(n: int) -> list[bytes]:
    return [h(b"request-%d" % i) for i in range(n)]


def test_root_of_one_chunk_is_the_chunk() -> None:
    c = chunks(1)
    assert merkle_root(c) == c[0]


def test_root_of_two_chunks() -> None:
    a, b = chunks(2)
    assert merkle_root([a, b]) == h(a + b)


def test_root_of_three_chunks_carries_the_odd_one_up() -> None:
    a, b, c = chunks(3)
    assert merkle_root([a, b, c]) == h(h(a + b) + c)


def test_root_of_four_chunks() -> None:
    a, b, c, d = chunks(4)
    assert merkle_root([a, b, c, d]) == h(h(a + b) + h(c + d))


def test_root_of_five_chunks() -> None:
    a, b, c, d, e = chunks(5)
    # level 1: ab, cd, e ; level 2: (ab|cd), e ; root: H((ab|cd) | e)
    assert merkle_root([a, b, c, d, e]) == h(h(h(a + b) + h(c + d)) + e)


def test_root_of_eight_chunks() -> None:
    c = chunks(8)
    l1 = [h(c[0] + c[1]), h(c[2] + c[3]), h(c[4] + c[5]), h(c[6] + c[7])]
    l2 = [h(l1[0] + l1[1]), h(l1[2] + l1[3])]
    assert merkle_root(c) == h(l2[0] + l2[1])


def test_chunk_order_matters() -> None:
    a, b = chunks(2)
    assert merkle_root([a, b]) != merkle_root([b, a])


def test_leaf_for_slot() -> None:
    root = h(b"root")
    assert leaf_for_slot(root, 0) == h(b"\x00" + root)
    assert leaf_for_slot(root, 3) == h(b"\x03" + root)
    with pytest.raises(ProofInputError):
        leaf_for_slot(root, 256)
    with pytest.raises(ProofInputError):
        leaf_for_slot(root[:31], 0)


def test_node_software_proof_is_leaf_zero() -> None:
    root = h(b"root")
    assert committed_proof(root, ProofScheme.NODE_SOFTWARE, 3) == h(b"\x00" + root)


def test_contract_proof_hashes_all_slots() -> None:
    root = h(b"root")
    leaves = h(b"\x00" + root) + h(b"\x01" + root)
    assert committed_proof(root, ProofScheme.CONTRACT, 1) == h(leaves)
    leaves3 = leaves + h(b"\x02" + root) + h(b"\x03" + root)
    assert committed_proof(root, ProofScheme.CONTRACT, 3) == h(leaves3)
    assert committed_proof(root, ProofScheme.CONTRACT, 0) == h(h(b"\x00" + root))


def test_contract_leaves_vector_zero_pads_unfilled_slots() -> None:
    root = h(b"root")
    vec = contract_leaves_vector(root, 3, filled_slots=[2])
    assert vec == h(b"\x00" + root) + bytes(32) + h(b"\x02" + root) + bytes(32)


def test_schemes_disagree_and_match_crd_values() -> None:
    root = h(b"root")
    assert committed_proof(root, ProofScheme.CONTRACT) != committed_proof(
        root, ProofScheme.NODE_SOFTWARE
    )
    assert {s.value for s in ProofScheme} == {"NodeSoftware", "Contract"}


def test_settlement_and_attestation_commitments() -> None:
    c = chunks(3)
    root = h(h(c[0] + c[1]) + c[2])
    proof, leaf = settlement_commitment(c, ProofScheme.CONTRACT, 1)
    assert leaf == h(b"\x00" + root)
    assert proof == h(h(b"\x00" + root) + h(b"\x01" + root))
    a_proof, a_leaf = attestation_commitment(c, ProofScheme.CONTRACT, 1, 1)
    assert a_proof == proof  # the attester agrees with an honest settler
    assert a_leaf == h(b"\x01" + root)
    with pytest.raises(ProofInputError):
        attestation_commitment(c, ProofScheme.CONTRACT, 0)


def test_parse_total_hash_splits_chunks() -> None:
    c = chunks(3)
    text = "0x" + b"".join(c).hex().upper()
    assert parse_total_hash(text) == c
    assert parse_total_hash(b"".join(c).hex()) == c
    wrapped = "\n".join(b"".join(c).hex()[i : i + 40] for i in range(0, 192, 40)) + "\n"
    assert parse_total_hash(wrapped) == c


@pytest.mark.parametrize(
    ("text", "reason", "needle"),
    [
        ("", "Empty", "empty"),
        ("0x", "Empty", "empty"),
        ("   ", "Empty", "empty"),
        ("ab" * 31, "NotMultipleOf32", "length is not a multiple of 32"),
        ("ab" * 33, "NotMultipleOf32", "length is not a multiple of 32"),
        ("zz" * 32, "NotHex", "not hex"),
        ("abc", "OddLength", "odd number of hex digits"),
    ],
)
def test_parse_total_hash_rejects(text: str, reason: str, needle: str) -> None:
    with pytest.raises(ProofInputError) as err:
        parse_total_hash(text)
    assert err.value.reason == reason
    assert needle in str(err.value)


def test_parse_hash32() -> None:
    v = h(b"x")
    assert parse_hash32(v.hex()) == v
    with pytest.raises(ProofInputError) as err:
        parse_hash32(v.hex()[:-2], "leaf")
    assert err.value.reason == "WrongLength"
    assert "leaf" in str(err.value)


def test_merkle_root_rejects_empty_and_short_chunks() -> None:
    with pytest.raises(ProofInputError):
        merkle_root([])
    with pytest.raises(ProofInputError):
        merkle_root([b"\x00" * 31])
