"""Proof inputs: what the operator needs per stack to build its proof and leaf.

Hex here may carry a lowercase `0x` prefix and use either case: these values are
only decoded to bytes, never used as keys, and common tools print them both ways.
Decoding and the checks of values read from a ConfigMap or Secret (which admission
never sees) live in `atoma_operator.atoma.hashing`, with the same rules as the CRD.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from atoma_operator.resources.common import U64, K8sModel, cel

MAX_TOTAL_HASH_REQUESTS = 4096
"""Inline totalHash bound (requests); larger totals belong in a ConfigMap or Secret."""
HEX_PER_HASH = 64
MAX_TOTAL_HASH_HEX = MAX_TOTAL_HASH_REQUESTS * HEX_PER_HASH + 2  # + optional "0x"
MAX_NAME_LENGTH = 253  # DNS subdomain (ConfigMap/Secret names)
MAX_KEY_LENGTH = 253  # ConfigMap/Secret data keys

HEX_PATTERN = r"^(0x)?[0-9a-fA-F]*$"
HASH32_PATTERN = r"^(0x)?[0-9a-fA-F]{64}$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
CONFIG_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"

TOTAL_HASH_MESSAGE = (
    "totalHash must be a non-empty multiple of 64 hex characters "
    "(one 32-byte hash per request), optionally prefixed with 0x"
)
HASH32_MESSAGE = "must be exactly 32 bytes: 64 hex characters, optionally prefixed with 0x"
PROOF_ONE_OF_MESSAGE = "set exactly one of totalHash, valueFrom, or committedProof with merkleLeaf"
PROOF_PAIR_MESSAGE = "committedProof and merkleLeaf must be given together"
VALUE_FROM_MESSAGE = "valueFrom needs exactly one of configMapKeyRef or secretKeyRef"


def _total_hash_length(value: str) -> str:
    digits = len(value) - (2 if value.startswith("0x") else 0)
    if digits == 0 or digits % HEX_PER_HASH:
        raise ValueError(TOTAL_HASH_MESSAGE)
    return value


def _hash32(value: str) -> str:
    if not re.fullmatch(HASH32_PATTERN, value):
        raise ValueError(HASH32_MESSAGE)
    return value


TotalHashHex = Annotated[
    str,
    Field(
        pattern=HEX_PATTERN,
        max_length=MAX_TOTAL_HASH_HEX,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "(size(self) - (self.startsWith('0x') ? 2 : 0)) % 64 == 0"
                    " && size(self) > (self.startsWith('0x') ? 2 : 0)",
                    TOTAL_HASH_MESSAGE,
                )
            ]
        },
    ),
    AfterValidator(_total_hash_length),
]
"""The concatenated 32-byte request hashes of a stack, as hex."""

Hash32Hex = Annotated[
    str,
    Field(
        max_length=66,
        json_schema_extra={
            "x-kubernetes-validations": [cel(f"self.matches('{HASH32_PATTERN}')", HASH32_MESSAGE)]
        },
    ),
    AfterValidator(_hash32),
]
"""32 bytes as hex; a CEL rule (not `pattern`) so the error reads as a sentence."""


class KeySelector(K8sModel):
    """A key of a ConfigMap or Secret in the resource's own namespace."""

    name: str = Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="Name of the object, in the resource's namespace.",
    )
    key: str = Field(
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern=CONFIG_KEY_PATTERN,
        description="The key holding the stack's total hash.",
    )


class ValueEncoding(StrEnum):
    """How a referenced value holds the total hash."""

    HEX = "Hex"
    """Hex text (optional 0x, whitespace and newlines ignored): the default."""
    BINARY = "Binary"
    """Raw bytes, e.g. a ConfigMap `binaryData` key: half the size of hex."""


class ProofValueSource(K8sModel):
    """Where a total hash too large to inline lives (like a container env valueFrom).

    The operator reads the key (ConfigMap data or binaryData, or Secret data) and
    decodes it per encoding; a missing object or key is waited for, a bad value stalls
    the resource with a readable reason.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("has(self.configMapKeyRef) != has(self.secretKeyRef)", VALUE_FROM_MESSAGE)
            ]
        }
    )

    config_map_key_ref: KeySelector | None = Field(
        default=None, description="A ConfigMap key (data or binaryData)."
    )
    secret_key_ref: KeySelector | None = Field(
        default=None, description="A Secret key (needs a SettlementPolicy allowing it)."
    )
    encoding: ValueEncoding | None = Field(default=None, description="Hex (default) or Binary.")

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.config_map_key_ref is None) == (self.secret_key_ref is None):
            raise ValueError(VALUE_FROM_MESSAGE)
        return self

    @property
    def effective_encoding(self) -> ValueEncoding:
        return self.encoding or ValueEncoding.HEX


class StackProof(K8sModel):
    """The proof input for one stack.

    Exactly one of: `totalHash` inline (the concatenated 32-byte request hashes; the
    operator derives the merkle root, leaf and committed proof), `valueFrom` (the
    same total hash read from a ConfigMap or Secret key), or a precomputed
    `committedProof` together with `merkleLeaf` (32 bytes each), used as given.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "(has(self.totalHash) ? 1 : 0) + (has(self.valueFrom) ? 1 : 0)"
                    " + (has(self.committedProof) || has(self.merkleLeaf) ? 1 : 0) == 1",
                    PROOF_ONE_OF_MESSAGE,
                ),
                cel(
                    "has(self.committedProof) == has(self.merkleLeaf)",
                    PROOF_PAIR_MESSAGE,
                    field_path=".merkleLeaf",
                    reason="FieldValueRequired",
                ),
            ]
        }
    )

    stack_small_id: U64 = Field(description="The stack this entry is for.")
    total_hash: TotalHashHex | None = Field(
        default=None,
        description="The stack's total hash as hex: every request's 32-byte hash, "
        "concatenated in order (the node's stacks.total_hash); the operator derives the "
        "merkle root, leaf and committed proof.",
    )
    value_from: ProofValueSource | None = Field(
        default=None,
        description="The same total hash read from a ConfigMap or Secret key in this "
        "namespace, for totals too large to inline. Missing objects or keys are waited "
        "for; a bad value stalls the resource with reason InvalidProofInput.",
    )
    committed_proof: Hash32Hex | None = Field(
        default=None,
        description="A precomputed committed proof (32 bytes hex), used as given; needs "
        "merkleLeaf.",
    )
    merkle_leaf: Hash32Hex | None = Field(
        default=None,
        description="A precomputed merkle leaf (32 bytes hex) for the attestation slot; "
        "needs committedProof.",
    )

    @model_validator(mode="after")
    def _one_input(self) -> Self:
        if (self.committed_proof is None) != (self.merkle_leaf is None):
            raise ValueError(PROOF_PAIR_MESSAGE)
        given = (self.total_hash, self.value_from, self.committed_proof)
        if sum(value is not None for value in given) != 1:
            raise ValueError(PROOF_ONE_OF_MESSAGE)
        return self

    @property
    def is_precomputed(self) -> bool:
        return self.committed_proof is not None


PROOF_SCHEME_DESCRIPTION = (
    "NodeSoftware: committed proof = leaf(0) = H(0x00 || root), as atoma-node computes it. "
    "Contract: H(leaf_0 || ... || zero-padded slots), as the contract's final check "
    "recomputes it. Omitted: the operator's configured default. Not used for "
    "precomputed proofs."
)
