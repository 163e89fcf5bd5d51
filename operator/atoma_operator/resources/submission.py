"""What both resources share about submitting transactions: the request fields of
the spec and the per-transaction progress (with its write-ahead record) in status."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, PrivateAttr, Strict, ValidationInfo, field_validator, model_validator
from pydantic.config import JsonDict

from atoma_operator.atoma.hashing import ProofScheme
from atoma_operator.resources.common import (
    MAX_SAFE_INTEGER,
    MAX_STACKS,
    U64,
    Digest,
    ErrorText,
    K8sModel,
    ObjectId,
    StackIdList,
    StatusModel,
    Timestamp,
    cel,
)
from atoma_operator.resources.proofs import PROOF_SCHEME_DESCRIPTION, StackProof
from atoma_operator.sui.types import ObjectRef, SignedTransaction

GAS_BUDGET_MIN = 1_000
GAS_BUDGET_MAX = 50_000_000_000
"""Sui's maximum transaction gas budget (50 SUI)."""
SUI_MAX_GAS_PRICE = 100_000
"""Sui's max_gas_price protocol setting (MIST per unit)."""
GAS_PRICE_MAX = SUI_MAX_GAS_PRICE - 1
"""Nodes refuse a price at or above max_gas_price (sui-types SuiGasStatus::new, `>=`)."""
MIN_BUDGET_UNITS = 1_000
"""Sui refuses a budget below gas price x 1,000 units (the protocol's minimum)."""
GAS_BUDGET_UNDER_PRICE_MESSAGE = (
    f"spec.gasBudget must be at least {MIN_BUDGET_UNITS:,} x spec.gasPrice (Sui's minimum "
    "budget); the chain refuses anything less"
)
DEFAULT_GAS_BUDGET = 50_000_000
"""Applied by the operator (settings), not by the apiserver: the seed's default."""
MAX_TX_BYTES_B64 = 174764
"""base64 of Sui's maximum transaction size (128 KiB)."""
MAX_SIGNATURE_B64 = 8192
MAX_FAILED_DIGESTS = 16
"""Executed-but-failed transactions kept per unit (the most recent ones)."""
"""A multisig signature is the largest kind; a single one is ~132 characters."""

ProofList = Annotated[
    list[StackProof],
    Field(
        min_length=1,
        max_length=MAX_STACKS,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["stackSmallId"],
        },
    ),
]
"""One entry per stack, keyed by stackSmallId (the apiserver rejects two for one)."""

PROOFS_UNLISTED_MESSAGE = (
    "every entry of spec.proofs must be for a stack listed in spec.stackSmallIds"
)
PROOFS_MISSING_MESSAGE = "spec.proofs needs an entry for every stack in spec.stackSmallIds"
PROOF_SOURCE_MESSAGE = (
    "set spec.proofs, or proofSource: StateDatabase to read every stack's total hash "
    "from the node's state database (not both)"
)


class ProofSource(StrEnum):
    """Where the operator gets the stacks' proof input."""

    SPEC = "Spec"
    """spec.proofs (inline, ConfigMap/Secret, or precomputed): the default."""
    STATE_DATABASE = "StateDatabase"
    """The node's state database (stacks.total_hash), as the daemon reads it."""


def proofs_match_stacks_rules() -> list[JsonDict]:
    """CEL on a spec: proofs and stackSmallIds name the same stacks, and proofs are
    omitted exactly when the source is the state database.

    Both lists are unique (set / map), so two inclusion checks suffice; each is
    O(n^2) over at most 256 entries, well inside the apiserver's cost budget.
    """
    return [
        cel(
            "has(self.proofs) != (has(self.proofSource) && self.proofSource == 'StateDatabase')",
            PROOF_SOURCE_MESSAGE,
            field_path=".proofs",
        ),
        cel(
            "!has(self.proofs) || self.proofs.all(p, p.stackSmallId in self.stackSmallIds)",
            PROOFS_UNLISTED_MESSAGE,
            field_path=".proofs",
        ),
        cel(
            "!has(self.proofs)"
            " || self.stackSmallIds.all(id, self.proofs.exists(p, p.stackSmallId == id))",
            PROOFS_MISSING_MESSAGE,
            field_path=".proofs",
            reason="FieldValueRequired",
        ),
    ]


def gas_rules() -> list[JsonDict]:
    """CEL on a spec: a budget the chain can accept at the named price."""
    return [
        cel(
            "!has(self.gasBudget) || !has(self.gasPrice) || "
            f"self.gasBudget >= {MIN_BUDGET_UNITS} * self.gasPrice",
            GAS_BUDGET_UNDER_PRICE_MESSAGE,
            field_path=".gasBudget",
        )
    ]


def immutable_rule(kind: str) -> JsonDict:
    """CEL transition rule: the spec of a one-shot resource never changes."""
    return cel("self == oldSelf", f"spec is immutable: create a new {kind} to submit again")


class SubmissionSpec(K8sModel):
    """Request fields every submitting resource has (the seed's POST bodies)."""

    stack_small_ids: StackIdList = Field(
        description="The stacks to submit for, by small id (unique; one transaction each per node)."
    )
    node_small_id: U64 | None = Field(
        default=None,
        description="The node badge to use; omitted when the operator holds one badge.",
    )
    gas: ObjectId | None = Field(
        default=None,
        description="A SUI coin to pay gas with (transactions are serialised on it); "
        "omitted: a coin from the operator's pool.",
    )
    gas_budget: Annotated[int, Strict()] | None = Field(
        default=None,
        ge=GAS_BUDGET_MIN,
        le=GAS_BUDGET_MAX,
        description="MIST per transaction; omitted: the operator's default "
        f"({DEFAULT_GAS_BUDGET:,}).",
    )
    gas_price: Annotated[int, Strict()] | None = Field(
        default=None,
        ge=1,
        le=GAS_PRICE_MAX,
        description="MIST per gas unit; omitted: the network's reference gas price.",
    )
    proof_source: ProofSource | None = Field(
        default=None,
        description="Spec (default): spec.proofs. StateDatabase: the operator reads each "
        "stack's total hash from the node's state database; spec.proofs is omitted.",
    )
    proofs: ProofList | None = Field(
        default=None,
        validate_default=True,
        description="The proof input of every listed stack, one entry each: its total hash "
        "inline or from a ConfigMap or Secret, or a precomputed committed proof and merkle "
        "leaf. Omitted when proofSource is StateDatabase.",
    )
    proof_scheme: ProofScheme | None = Field(default=None, description=PROOF_SCHEME_DESCRIPTION)
    ttl_seconds_after_finished: Annotated[int, Strict()] | None = Field(
        default=None,
        ge=0,
        le=MAX_SAFE_INTEGER,
        description="Delete this resource this many seconds after it is final (Settled, "
        "Failed or Disputed), like a Job's ttlSecondsAfterFinished; omitted: the operator's "
        "setting (default: keep). The claimed-stack view, metrics and Events keep the record.",
    )

    @property
    def from_state_database(self) -> bool:
        return self.proof_source is ProofSource.STATE_DATABASE

    def proof_for(self, stack_small_id: int) -> StackProof | None:
        """The proof entry of a listed stack; None when it comes from the state database."""
        if self.proofs is None:
            return None
        for proof in self.proofs:
            if proof.stack_small_id == stack_small_id:
                return proof
        raise KeyError(stack_small_id)

    @field_validator("proofs")
    @classmethod
    def _proofs_unless_state_database(
        cls, proofs: list[StackProof] | None, info: ValidationInfo
    ) -> list[StackProof] | None:
        from_db = info.data.get("proof_source") is ProofSource.STATE_DATABASE
        if (proofs is not None) == from_db:
            raise ValueError(PROOF_SOURCE_MESSAGE)
        return proofs

    @model_validator(mode="after")
    def _budget_covers_price(self) -> Self:
        budget, price = self.gas_budget, self.gas_price
        if budget is not None and price is not None and budget < MIN_BUDGET_UNITS * price:
            raise ValueError(f"{GAS_BUDGET_UNDER_PRICE_MESSAGE} ({budget} < 1000 x {price})")
        return self

    @model_validator(mode="after")
    def _proofs_match_stacks(self) -> Self:
        if self.proofs is None:
            return self
        listed = set(self.stack_small_ids)
        proved = [p.stack_small_id for p in self.proofs]
        if len(set(proved)) != len(proved):
            raise ValueError("spec.proofs has two entries for one stack")
        if unlisted := sorted(set(proved) - listed):
            raise ValueError(f"{PROOFS_UNLISTED_MESSAGE} (not listed: {unlisted})")
        if missing := sorted(listed - set(proved)):
            raise ValueError(f"{PROOFS_MISSING_MESSAGE} (missing: {missing})")
        return self


class GasCoinRef(StatusModel):
    """The gas coin version a signed transaction locks."""

    object_id: ObjectId = Field(description="The gas coin's object id.")
    version: U64 = Field(description="The coin version the transaction uses.")
    digest: Digest = Field(description="The object digest of that coin version.")

    @classmethod
    def from_ref(cls, ref: ObjectRef) -> GasCoinRef:
        return cls(object_id=ref.object_id, version=ref.version, digest=ref.digest)

    def to_ref(self) -> ObjectRef:
        return ObjectRef(object_id=self.object_id, version=self.version, digest=self.digest)


class PendingTransaction(StatusModel):
    """Write-ahead intent, stored before executing (ARCHITECTURE "submission protocol").

    It holds what is needed to finish the *same* transaction after a crash: the
    digest (to look it up), the signed bytes and signatures (Sui deduplicates by
    digest, so re-sending is safe), and the gas coin reference (to tell when the coin
    has moved on and a rebuild is needed). Signatures are kept although the operator
    could re-sign: they are public once sent, small (~132 characters for Ed25519),
    and keeping them means recovery never needs the key or a deterministic signer.
    Nothing secret is stored here.
    """

    digest: Digest = Field(description="The transaction digest, to look it up on chain.")
    tx_bytes: str = Field(max_length=MAX_TX_BYTES_B64, description="BCS TransactionData, base64.")
    signatures: list[Annotated[str, Field(max_length=MAX_SIGNATURE_B64)]] = Field(
        min_length=1, max_length=4, description="Serialized signatures, base64."
    )
    gas_coin: GasCoinRef = Field(
        description="The gas coin version the transaction spends; once the coin has moved "
        "on without it, the transaction can no longer execute and is rebuilt."
    )
    gas_budget: U64 = Field(description="Gas budget of the transaction, MIST.")
    gas_price: U64 = Field(description="Gas price of the transaction, MIST per unit.")
    attempt: int = Field(
        ge=1, le=MAX_SAFE_INTEGER, description="Which build of this unit it is (1 = first)."
    )
    recorded_at: Timestamp = Field(description="When the intent was written, before sending.")

    @classmethod
    def from_signed(
        cls, tx: SignedTransaction, *, attempt: int, recorded_at: datetime
    ) -> PendingTransaction:
        return cls(
            digest=tx.digest,
            tx_bytes=tx.tx_bytes_b64,
            signatures=list(tx.signatures),
            gas_coin=GasCoinRef.from_ref(tx.gas_coin),
            gas_budget=tx.gas_budget,
            gas_price=tx.gas_price,
            attempt=attempt,
            recorded_at=recorded_at,
        )

    def to_signed(self) -> SignedTransaction:
        return SignedTransaction(
            digest=self.digest,
            tx_bytes_b64=self.tx_bytes,
            signatures=tuple(self.signatures),
            gas_coin=self.gas_coin.to_ref(),
            gas_budget=self.gas_budget,
            gas_price=self.gas_price,
        )


class TransactionProgress(StatusModel):
    """Per-transaction bookkeeping shared by stack and attestation entries."""

    _waits_for: frozenset[str] = PrivateAttr(default_factory=frozenset)
    """In memory only, for this pass: the node badge (or the gas pool) the unit found
    busy. The controller wakes the resource when that is released; nothing is written."""

    @property
    def waits_for(self) -> frozenset[str]:
        return self._waits_for

    @waits_for.setter
    def waits_for(self, value: frozenset[str]) -> None:
        self._waits_for = value

    tx_digest: Digest | None = Field(
        default=None, description="The executed transaction (its effects are recorded)."
    )
    failed_tx_digests: list[Digest] = Field(
        default_factory=list,
        max_length=MAX_FAILED_DIGESTS,
        description="Executed transactions of this unit that failed on chain (Move aborts, "
        "out of gas), most recent last; they spent gas but settled nothing.",
    )
    attempts: int = Field(
        default=0, ge=0, le=MAX_SAFE_INTEGER, description="Failed attempts so far (backoff)."
    )
    reason: Annotated[str, Field(max_length=128, pattern=r"^[A-Za-z][A-Za-z0-9]*$")] | None = Field(
        default=None,
        description="Why the last failure happened, CamelCase (e.g. the Move abort's "
        "name, InvalidProofInput, ChainUnavailable); also the Stalled condition's reason.",
    )
    last_error: ErrorText | None = Field(
        default=None, description="The last failure's message (Secret values never appear)."
    )
    last_failure_time: Timestamp | None = Field(default=None, description="When it failed.")
    next_retry_time: Timestamp | None = Field(
        default=None, description="The earliest time the operator tries this unit again."
    )
    waiting_since: Timestamp | None = Field(
        default=None,
        description="When the unit first found its referenced proof input missing; it "
        "fails (InvalidProofInput) once the operator's wait limit has passed since.",
    )
    gas_used_mist: int | None = Field(
        default=None,
        ge=-MAX_SAFE_INTEGER,
        le=MAX_SAFE_INTEGER,
        description="Net gas charged: computation + storage - rebate (may be negative).",
    )
    pending: PendingTransaction | None = Field(
        default=None, description="Signed and recorded, not yet known to be executed."
    )
