"""Attestation: the seed's `POST /submit_stack_settlement_attestations` as a resource.

One transaction per (stack, attesting badge); status has one entry per pair with the
badge's slot in the ticket (its first position in requested_attestation_nodes + 1).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import ConfigDict, Field, model_validator

from atoma_operator.resources.common import (
    CONDITIONS_DESCRIPTION,
    MAX_SAFE_INTEGER,
    OBSERVED_GENERATION_DESCRIPTION,
    U64,
    ConditionList,
    Digest,
    K8sModel,
    ResourceNames,
    StatusModel,
    cel,
)
from atoma_operator.resources.policy import PolicyCharge
from atoma_operator.resources.submission import (
    SubmissionSpec,
    TransactionProgress,
    gas_rules,
    immutable_rule,
    proofs_match_stacks_rules,
)

NAMES = ResourceNames(
    kind="Attestation", plural="attestations", singular="attestation", short_name="atst"
)
MAX_ATTESTATIONS = 4096
"""(stack, attesting badge) pairs per resource: 256 stacks x 16 badges."""
PRECOMPUTED_NEEDS_NODE_MESSAGE = (
    "precomputed committedProof/merkleLeaf need spec.nodeSmallId: a merkle leaf "
    "belongs to one attestation slot"
)


class AttestationSpec(SubmissionSpec):
    """What to attest. Without nodeSmallId: every badge the operator holds that a
    stack's ticket requested. Immutable: a new submission is a new resource."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                immutable_rule(NAMES.kind),
                *proofs_match_stacks_rules(),
                *gas_rules(),
                cel(
                    "has(self.nodeSmallId) || !has(self.proofs)"
                    " || self.proofs.all(p, !has(p.committedProof))",
                    PRECOMPUTED_NEEDS_NODE_MESSAGE,
                    field_path=".nodeSmallId",
                    reason="FieldValueRequired",
                ),
            ]
        }
    )

    @model_validator(mode="after")
    def _precomputed_needs_node(self) -> Self:
        if self.node_small_id is None and any(p.is_precomputed for p in self.proofs or ()):
            raise ValueError(PRECOMPUTED_NEEDS_NODE_MESSAGE)
        return self


class AttestationPhase(StrEnum):
    """Where one (stack, node) attestation is; Settled, Failed and Disputed are final."""

    PENDING = "Pending"
    """Waiting for the settlement ticket, or for a turn on the gas coin."""
    SIMULATING = "Simulating"
    SUBMITTING = "Submitting"
    """Intent recorded (pending), transaction being executed."""
    SUBMITTED = "Submitted"
    """Executed; waiting for effects/finality to be confirmed."""
    ATTESTED = "Attested"
    """The leaf is on chain; other sampled nodes have not all attested yet."""
    SETTLED = "Settled"
    """Every sampled node attested and the committed proof matched."""
    FAILED = "Failed"
    DISPUTED = "Disputed"


class AttestationEntryStatus(TransactionProgress):
    """One (stack, attesting node) pair."""

    stack_small_id: U64 = Field(description="The stack attested.")
    node_small_id: U64 = Field(description="The node badge attesting.")
    slot: int = Field(
        ge=1,
        le=MAX_SAFE_INTEGER,
        description="Leaf slot in the ticket: the node's first position in "
        "requestedAttestationNodes + 1 (slot 0 is the selected node's).",
    )
    phase: AttestationPhase = AttestationPhase.PENDING


class AttestationStatus(StatusModel):
    """What the operator did and what the chain says, written by the operator only."""

    observed_generation: int | None = Field(
        default=None, ge=0, le=MAX_SAFE_INTEGER, description=OBSERVED_GENERATION_DESCRIPTION
    )
    attested: str | None = Field(
        default=None,
        max_length=32,
        description="Attestations on chain (attested or settled) out of all (stack, node) "
        "pairs, as attested/total (e.g. 3/3).",
    )
    policy_charges: Annotated[
        list[PolicyCharge],
        Field(max_length=16, json_schema_extra={"x-kubernetes-list-type": "atomic"}),
    ] = Field(
        default_factory=list,
        description="What this resource was charged against SettlementPolicy spend limits.",
    )
    conditions: ConditionList = Field(default_factory=list, description=CONDITIONS_DESCRIPTION)
    tx_digests: Annotated[
        list[Digest],
        Field(max_length=MAX_ATTESTATIONS, json_schema_extra={"x-kubernetes-list-type": "atomic"}),
    ] = Field(
        default_factory=list,
        description="Digests of the executed attestation transactions, in stack order, "
        "then node order.",
    )
    attestations: Annotated[
        list[AttestationEntryStatus],
        Field(
            max_length=MAX_ATTESTATIONS,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["stackSmallId", "nodeSmallId"],
            },
        ),
    ] = Field(
        default_factory=list,
        description="One entry per (stack, attesting node): its slot and the "
        "transaction's progress.",
    )

    def entry(self, stack_small_id: int, node_small_id: int) -> AttestationEntryStatus | None:
        return next(
            (
                a
                for a in self.attestations
                if a.stack_small_id == stack_small_id and a.node_small_id == node_small_id
            ),
            None,
        )


class Attestation(K8sModel):
    """The whole object, for code that reads it in one piece (tests, the follower)."""

    model_config = ConfigDict(extra="ignore")

    api_version: str = Field(default=NAMES.api_version, max_length=64)
    kind: str = Field(default=NAMES.kind, max_length=64)
    metadata: dict[str, object] = Field(default_factory=dict)
    spec: AttestationSpec
    status: AttestationStatus = Field(default_factory=AttestationStatus)
