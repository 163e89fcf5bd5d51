"""StackSettlement: the seed's `POST /try_settle_stack_ids` as a one-shot resource.

Spec mirrors the request body; status holds one entry per stack with the submission
state and the claimed-stack fields of the seed's `GET /claimed_stacks`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field

from atoma_operator.resources.common import (
    CONDITIONS_DESCRIPTION,
    MAX_SAFE_INTEGER,
    MAX_STACKS,
    OBSERVED_GENERATION_DESCRIPTION,
    U64,
    ConditionList,
    Digest,
    K8sModel,
    ResourceNames,
    StatusModel,
    Timestamp,
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
    kind="StackSettlement", plural="stacksettlements", singular="stacksettlement", short_name="stl"
)
MAX_ATTESTATION_NODES = 1024
"""Bound on a ticket's sampled attestation nodes (the draw is 1% per node by default)."""


class StackSettlementSpec(SubmissionSpec):
    """What to settle. Immutable: a new submission is a new resource."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                immutable_rule(NAMES.kind),
                *proofs_match_stacks_rules(),
                *gas_rules(),
            ]
        }
    )

    num_claimed_compute_units: U64 = Field(description="Compute units claimed for each stack.")


class SettlementPhase(StrEnum):
    """Where one stack's settlement is; Settled, Failed and Disputed are final."""

    PENDING = "Pending"
    SIMULATING = "Simulating"
    SUBMITTING = "Submitting"
    """Intent recorded (status.pending), transaction being executed."""
    SUBMITTED = "Submitted"
    """Executed; waiting for effects/finality to be confirmed."""
    SETTLING = "Settling"
    """The settlement ticket exists; waiting for sampled attestations."""
    SETTLED = "Settled"
    FAILED = "Failed"
    DISPUTED = "Disputed"


class ClaimedAttestationStatus(StrEnum):
    """Where a settled stack's attestations are (the node daemon's attestation_status)."""

    PENDING = "Pending"
    COMPLETE = "Complete"
    FAILED = "Failed"


class StackSettlementStackStatus(TransactionProgress):
    """One stack: submission state, then the ticket as the chain reports it."""

    stack_small_id: U64 = Field(description="The stack.")
    phase: SettlementPhase = SettlementPhase.PENDING
    selected_node_id: U64 | None = Field(
        default=None, description="The node the settlement ticket names (from the chain)."
    )
    num_claimed_compute_units: U64 | None = Field(
        default=None, description="Compute units claimed, as the ticket records them."
    )
    settlement_time: Timestamp | None = Field(
        default=None, description="When the settlement ticket was created."
    )
    attestation_status: ClaimedAttestationStatus | None = Field(
        default=None,
        description="Pending (attestations outstanding), Complete (all received and "
        "agreeing) or Failed (a disagreement: disputed).",
    )
    requested_attestation_nodes: (
        Annotated[
            list[U64],
            Field(
                max_length=MAX_ATTESTATION_NODES,
                json_schema_extra={"x-kubernetes-list-type": "atomic"},
            ),
        ]
        | None
    ) = Field(
        default=None,
        description="Sampled attestation node small ids in ticket order; may repeat "
        "(sampling is with replacement). A node's slot is its first position + 1.",
    )
    received_attestations: int | None = Field(
        default=None, ge=0, le=MAX_SAFE_INTEGER, description="Attestations received so far."
    )
    required_attestations: int | None = Field(
        default=None,
        ge=0,
        le=MAX_SAFE_INTEGER,
        description="Attestations the ticket needs (its sampled nodes).",
    )
    dispute_settled_at_epoch: U64 | None = Field(
        default=None, description="The Sui epoch at which the dispute period ends."
    )
    settlement_complete: bool | None = Field(
        default=None,
        description="True once all attestations agreed and the dispute period passed.",
    )
    claimed: bool | None = Field(
        default=None, description="True once the node claimed the stack's funds."
    )


class StackSettlementStatus(StatusModel):
    """What the operator did and what the chain says, written by the operator only."""

    observed_generation: int | None = Field(
        default=None, ge=0, le=MAX_SAFE_INTEGER, description=OBSERVED_GENERATION_DESCRIPTION
    )
    node_small_id: U64 | None = Field(
        default=None,
        description="The node badge this resource settles with: spec.nodeSmallId, or the "
        "operator's only badge when that is omitted.",
    )
    settled: str | None = Field(
        default=None,
        max_length=32,
        description="Stacks settled on chain out of all listed, as settled/total (e.g. 2/3).",
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
        Field(max_length=MAX_STACKS, json_schema_extra={"x-kubernetes-list-type": "atomic"}),
    ] = Field(
        default_factory=list,
        description="Digests of the executed settlement transactions, in spec.stackSmallIds order.",
    )
    stacks: Annotated[
        list[StackSettlementStackStatus],
        Field(
            max_length=MAX_STACKS,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["stackSmallId"],
            },
        ),
    ] = Field(
        default_factory=list,
        description="One entry per stack: the transaction's progress, then the settlement "
        "ticket as the chain reports it.",
    )

    def stack(self, stack_small_id: int) -> StackSettlementStackStatus | None:
        return next((s for s in self.stacks if s.stack_small_id == stack_small_id), None)


class StackSettlement(K8sModel):
    """The whole object, for code that reads it in one piece (tests, the follower)."""

    model_config = ConfigDict(extra="ignore")

    api_version: str = Field(default=NAMES.api_version, max_length=64)
    kind: str = Field(default=NAMES.kind, max_length=64)
    metadata: dict[str, object] = Field(default_factory=dict)
    spec: StackSettlementSpec
    status: StackSettlementStatus = Field(default_factory=StackSettlementStatus)
