"""SettlementPolicy: who may make the node spend what (cluster-scoped, set by the admin).

A policy selects namespaces (by name and/or by labels) and says, for StackSettlements
and Attestations there: which node badges they may use, the largest gas budget and gas
price per transaction, an optional spend limit per period, and whether proofs may come
from Secrets. A resource in a namespace no policy selects is refused; when several
select it, each must permit it (restrictions compose, as the admission policy's
per-parameter evaluations do).

Why a cluster-scoped resource: tenants who may create settlements in a namespace must
not be able to write their own limits there (a namespaced policy, or an annotation on
the namespace, would be theirs to edit); the same objects are the ValidatingAdmission-
Policy's parameters, so admission and the operator read one source.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import ConfigDict, Field, model_validator

from atoma_operator.resources.common import (
    MAX_SAFE_INTEGER,
    U64,
    K8sModel,
    ResourceNames,
    StatusModel,
    Timestamp,
    cel,
)

NAMES = ResourceNames(
    kind="SettlementPolicy",
    plural="settlementpolicies",
    singular="settlementpolicy",
    short_name="stlpol",
)
MAX_NAMESPACES = 256
MAX_BADGES = 256
MAX_LABELS = 32
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
SELECTS_MESSAGE = "set namespaces, namespaceSelector or both"


class NamespaceSelector(K8sModel):
    """Namespaces whose labels include every one of these (a label selector's matchLabels)."""

    match_labels: Annotated[
        dict[
            Annotated[str, Field(max_length=317)],
            Annotated[str, Field(max_length=63)],
        ],
        Field(min_length=1, max_length=MAX_LABELS),
    ] = Field(description="Labels a namespace must all have (key: value).")


class SpendLimit(K8sModel):
    """At most `mist` committed per `periodSeconds` across every selected namespace.

    Committed = gas budget x transactions a resource may send, charged once per resource
    when it is first permitted (a budget is the most a transaction can cost).
    """

    mist: U64 = Field(description="The most MIST committed per period.")
    period_seconds: int = Field(
        ge=60, le=MAX_SAFE_INTEGER, description="Length of a period, in seconds (at least 60)."
    )


class SettlementPolicySpec(K8sModel):
    """Which namespaces this policy selects and what their resources may spend."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("has(self.namespaces) || has(self.namespaceSelector)", SELECTS_MESSAGE)
            ]
        }
    )

    namespaces: (
        Annotated[
            list[Annotated[str, Field(max_length=63, pattern=NAMESPACE_PATTERN)]],
            Field(max_length=MAX_NAMESPACES, json_schema_extra={"x-kubernetes-list-type": "set"}),
        ]
        | None
    ) = Field(default=None, description="Namespaces selected by name.")
    namespace_selector: NamespaceSelector | None = Field(
        default=None, description="Namespaces selected by their labels."
    )
    node_small_ids: Annotated[
        list[U64],
        Field(max_length=MAX_BADGES, json_schema_extra={"x-kubernetes-list-type": "set"}),
    ] = Field(description="Node badges (node small ids) resources there may use.")
    max_gas_budget: U64 = Field(description="Largest gas budget per transaction, MIST.")
    max_gas_price: U64 = Field(description="Largest gas price per transaction, MIST per unit.")
    spend_limit: SpendLimit | None = Field(default=None, description="Omitted: no limit.")
    allow_secret_proofs: bool = Field(
        default=False, description="Whether proofs may be read from Secrets (secretKeyRef)."
    )

    @model_validator(mode="after")
    def _selects(self) -> Self:
        if self.namespaces is None and self.namespace_selector is None:
            raise ValueError(SELECTS_MESSAGE)
        return self

    def selects(self, namespace: str, labels: dict[str, str]) -> bool:
        if self.namespaces is not None and namespace in self.namespaces:
            return True
        selector = self.namespace_selector
        return selector is not None and all(
            labels.get(k) == v for k, v in selector.match_labels.items()
        )


class SpendPeriod(StatusModel):
    """The spend ledger of the current period (written by the operator only)."""

    start: Timestamp = Field(description="When the current period began.")
    committed_mist: int = Field(
        ge=0, le=MAX_SAFE_INTEGER, description="MIST committed so far in this period."
    )


class SettlementPolicyStatus(StatusModel):
    """The spend ledger, written by the operator only."""

    period: SpendPeriod | None = Field(
        default=None, description="The current period of the spend limit."
    )


class PolicyCharge(StatusModel):
    """On a StackSettlement/Attestation: what it was charged against a spend limit, so a
    later pass (or a restarted operator) does not charge it again."""

    policy: str = Field(max_length=253, description="The SettlementPolicy charged.")
    period_start: Timestamp = Field(description="The spend period the charge belongs to.")
    mist: int = Field(ge=0, le=MAX_SAFE_INTEGER, description="MIST charged.")


class SettlementPolicy(K8sModel):
    model_config = ConfigDict(extra="ignore")

    api_version: str = Field(default=NAMES.api_version, max_length=64)
    kind: str = Field(default=NAMES.kind, max_length=64)
    metadata: dict[str, object] = Field(default_factory=dict)
    spec: SettlementPolicySpec
    status: SettlementPolicyStatus = Field(default_factory=SettlementPolicyStatus)

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))
