"""Building blocks shared by the StackSettlement and Attestation resources.

The pydantic models of this package are the single source of truth for the CRD
schemas (`crd.py` turns them into structural OpenAPI) and for the operator's own
parsing, so every admission rule exists twice: as OpenAPI/CEL for the apiserver and
as a pydantic validator for code and unit tests. `tests/data/admission_cases.yaml`
runs the same bad resources against both to keep them in step.

Decisions (each enforced in both places):

* **Object ids** are `0x` + exactly 64 *lowercase* hex digits. Uppercase and short
  forms (`0x2`) are rejected rather than normalised: the gas-coin manager keys leases
  by id string, and two spellings of one coin would let it lease the coin twice, which
  Sui punishes by locking the coin until the epoch ends. Admission cannot rewrite
  values without a webhook, so rejecting is the safe choice. Sui tools print the
  canonical lowercase form.
* **u64 values** (stack and node small ids, compute units, epochs, gas) are schema
  `integer`, `format: int64`, `minimum: 0`, `maximum: 2^53-1`. Kubernetes carries
  integers as int64, so the full u64 range would need a string form, which makes
  users quote numbers and CEL rules parse strings. Within int64, 2^53-1 is the
  bound that works everywhere: the apiserver stores schema bounds as float64 and
  refuses `maximum: 2^63-1` ("Maximum boundary value must be of type integer with
  format int64"), and JSON clients that read numbers as doubles (JavaScript
  dashboards, jq) lose precision above 2^53. The ids, epochs and MIST amounts here
  are counters and amounts far below 2^53 (~9e15 MIST = 9 million SUI per
  transaction).
* **Strings and lists are all bounded** (maxLength / maxItems): the apiserver
  estimates CEL cost from those bounds and refuses a CRD whose rules could be
  unbounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
)
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

MAX_SAFE_INTEGER = 2**53 - 1
"""Largest integer any field accepts (see the module docstring on u64 values)."""
MAX_STACKS = 256
"""Stacks per resource: bounds status size and the CEL cost of the proof rules."""
MAX_ERROR_LENGTH = 4096
"""lastError bound; use `truncate()` before writing chain errors to status."""
MAX_CONDITION_MESSAGE = 32768  # metav1.Condition
MAX_CONDITIONS = 16
MAX_DIGEST_LENGTH = 64
"""Sui transaction and object digests are base58 of 32 bytes: 43-44 characters."""

OBSERVED_GENERATION_DESCRIPTION = (
    "The metadata.generation the operator has acted on; set from its first status write, "
    "so GitOps tools know the resource is being worked on."
)
OBJECT_ID_PATTERN = r"^0x[0-9a-f]{64}$"
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


def cel(
    rule: str,
    message: str,
    *,
    field_path: str | None = None,
    reason: str | None = None,
) -> JsonDict:
    """One `x-kubernetes-validations` entry; fieldPath makes the error name the field."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path is not None:
        entry["fieldPath"] = field_path
    if reason is not None:
        entry["reason"] = reason
    return entry


def truncate(text: str, limit: int = MAX_ERROR_LENGTH) -> str:
    """Cut a message to fit a bounded status string (the apiserver rejects longer ones)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _unique(values: list[int]) -> list[int]:
    seen: set[int] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate value {value}")
        seen.add(value)
    return values


U64 = Annotated[int, Strict(), Field(ge=0, le=MAX_SAFE_INTEGER)]
"""A chain u64 as Kubernetes can carry it (see the module docstring)."""

ObjectId = Annotated[str, Field(pattern=OBJECT_ID_PATTERN, min_length=66, max_length=66)]
"""A Sui object id in canonical form: 0x + 64 lowercase hex digits."""

Digest = Annotated[str, Field(max_length=MAX_DIGEST_LENGTH)]
"""A base58 Sui digest (transaction or object). Written by the operator only."""

ErrorText = Annotated[str, Field(max_length=MAX_ERROR_LENGTH)]

Timestamp = Annotated[AwareDatetime, Field(json_schema_extra={"maxLength": 64})]
"""RFC 3339 with a zone (at most ~35 characters; the bound keeps the schema uniform)."""

StackIdList = Annotated[
    list[U64],
    Field(
        min_length=1,
        max_length=MAX_STACKS,
        json_schema_extra={"x-kubernetes-list-type": "set"},
    ),
    AfterValidator(_unique),
]
"""1..MAX_STACKS unique stack small ids (a set list: the apiserver rejects duplicates)."""


class K8sModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are errors.

    Reconcile code builds models by Python name and writes `to_k8s()` to the API.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
    )

    def to_k8s(self) -> dict[str, Any]:
        """The JSON form for the API: camelCase, unset (None) fields omitted."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StatusModel(K8sModel):
    """Status is written by the operator; reading it back tolerates fields a newer
    operator version added, so a downgrade does not wedge every resource."""

    model_config = ConfigDict(extra="ignore")


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(StatusModel):
    """metav1.Condition, field for field, so kstatus, Flux and `kubectl wait` read it."""

    type: str = Field(
        max_length=316,
        pattern=CONDITION_TYPE_PATTERN,
        description="Ready, Reconciling, Stalled or (StackSettlement) Settled.",
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=CONDITION_REASON_PATTERN,
        description="Why, in one CamelCase word (see the README's troubleshooting section).",
    )
    message: str = Field(
        max_length=MAX_CONDITION_MESSAGE, description="What happened, for people to read."
    )
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        le=MAX_SAFE_INTEGER,
        description="The metadata.generation this condition was set for.",
    )
    last_transition_time: Timestamp = Field(
        description="When status last changed (between True and False)."
    )


ConditionList = Annotated[
    list[Condition],
    Field(
        max_length=MAX_CONDITIONS,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    ),
]
"""Conditions keyed by type (a list-map: server-side apply merges them per type)."""

CONDITIONS_DESCRIPTION = (
    "Ready (always present), Reconciling (work under way), Stalled (nothing changes "
    "without a new resource) and, for a StackSettlement, Settled; read by kubectl wait, "
    "Argo CD and Flux."
)


GROUP = "atoma.network"
VERSION = "v1alpha1"
CATEGORY = "atoma"


@dataclass(frozen=True)
class ResourceNames:
    """How one kind is addressed: kopf handlers, kubectl and the CRD use these."""

    kind: str
    plural: str
    singular: str
    short_name: str
    group: str = GROUP
    version: str = VERSION

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"
