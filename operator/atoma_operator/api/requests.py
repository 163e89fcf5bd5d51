"""The daemon's request bodies (seed 001) and their mapping to resources.

Pure functions: parse a body with the seed's field names, derive a resource name from
the request (so a retried POST finds the resource it created instead of submitting
again), and build the resource with `proofSource: StateDatabase`, as the daemon reads
each stack's total hash from its own state database.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from atoma_operator.resources.attestation import NAMES as ATST_NAMES
from atoma_operator.resources.common import GROUP, MAX_STACKS, VERSION
from atoma_operator.resources.stack_settlement import NAMES as STL_NAMES

NAME_PREFIX: Final = {"StackSettlement": "api-settle-", "Attestation": "api-attest-"}
SHORT_ID = re.compile(r"^0x[0-9a-fA-F]{1,64}$")
U64 = Annotated[StrictInt, Field(ge=0, le=2**64 - 1)]


class RequestError(ValueError):
    """A body the daemon would refuse: answered 400 with this message."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stack_small_ids: list[U64] = Field(min_length=1, max_length=MAX_STACKS)
    node_small_id: U64 | None = None
    gas: str | None = None
    gas_budget: U64 | None = None
    gas_price: U64 | None = None


class TrySettleRequest(_Body):
    """POST /try_settle_stack_ids."""

    num_claimed_compute_units: U64


class AttestationsRequest(_Body):
    """POST /submit_stack_settlement_attestations."""


def parse(model: type[_Body], raw: bytes) -> _Body:
    """The body as `model`; bad JSON or fields -> RequestError with a readable message."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(f"request body is not valid JSON: {exc}") from None
    try:
        body = model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise RequestError(f"invalid request: {problems}") from None
    if len(set(body.stack_small_ids)) != len(body.stack_small_ids):
        raise RequestError("invalid request: stack_small_ids has duplicates")
    return body


def object_id(value: str) -> str:
    """A Sui object id in full form; short forms such as the seed's "0x789" are padded."""
    if not SHORT_ID.match(value):
        raise RequestError(f"invalid request: gas: {value!r} is not a Sui object id")
    return "0x" + value[2:].lower().rjust(64, "0")


def resource_name(kind: str, body: _Body) -> str:
    """A name derived from the request: the same body always names the same resource."""
    canonical = json.dumps(body.model_dump(), sort_keys=True, separators=(",", ":"))
    return NAME_PREFIX[kind] + hashlib.sha256(canonical.encode()).hexdigest()[:20]


def to_resource(kind: str, body: _Body, namespace: str) -> dict[str, Any]:
    """The StackSettlement or Attestation the request stands for."""
    spec: dict[str, Any] = {
        "stackSmallIds": body.stack_small_ids,
        "proofSource": "StateDatabase",
    }
    if isinstance(body, TrySettleRequest):
        spec["numClaimedComputeUnits"] = body.num_claimed_compute_units
    if body.node_small_id is not None:
        spec["nodeSmallId"] = body.node_small_id
    if body.gas is not None:
        spec["gas"] = object_id(body.gas)
    if body.gas_budget is not None:
        spec["gasBudget"] = body.gas_budget
    if body.gas_price is not None:
        spec["gasPrice"] = body.gas_price
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {
            "name": resource_name(kind, body),
            "namespace": namespace,
            "labels": {"app.kubernetes.io/created-by": "atoma-operator-api"},
        },
        "spec": spec,
    }


PLURAL: Final = {"StackSettlement": STL_NAMES.plural, "Attestation": ATST_NAMES.plural}
