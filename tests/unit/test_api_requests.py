"""The daemon's request bodies: parsing, the name derived from a request, the resource."""

from __future__ import annotations

import json

import pytest

from atoma_operator.api.requests import (
    AttestationsRequest,
    RequestError,
    TrySettleRequest,
    object_id,
    parse,
    resource_name,
    to_resource,
)
from atoma_operator.resources.attestation import Attestation
from atoma_operator.resources.stack_settlement import StackSettlement

SEED = {
    "stack_small_ids": [123, 456],
    "num_claimed_compute_units": 50,
    "node_small_id": 789,
    "gas": "0x789",
    "gas_budget": 10_000,  # the seed's 1000 is under Sui's minimum of 1000 x price
    "gas_price": 10,
}


def test_same_request_same_name_other_request_other_name() -> None:
    a = parse(TrySettleRequest, json.dumps(SEED).encode())
    b = parse(TrySettleRequest, json.dumps(dict(reversed(SEED.items()))).encode())
    c = parse(TrySettleRequest, json.dumps({**SEED, "stack_small_ids": [123]}).encode())
    assert resource_name("StackSettlement", a) == resource_name("StackSettlement", b)
    assert resource_name("StackSettlement", a) != resource_name("StackSettlement", c)
    assert len(resource_name("StackSettlement", a)) <= 63


def test_resources_are_valid_models() -> None:
    body = parse(TrySettleRequest, json.dumps(SEED).encode())
    StackSettlement.model_validate(to_resource("StackSettlement", body, "ns"))
    attest = {k: v for k, v in SEED.items() if k != "num_claimed_compute_units"}
    abody = parse(AttestationsRequest, json.dumps(attest).encode())
    Attestation.model_validate(to_resource("Attestation", abody, "ns"))


def test_the_seeds_literal_budget_is_refused_with_the_rule() -> None:
    """Seed 001's example asks for budget 1000 at price 10: Sui refuses any budget under
    1000 x price, so the resource (and the apiserver, by CEL) refuses it, saying why."""
    body = parse(TrySettleRequest, json.dumps({**SEED, "gas_budget": 1000}).encode())
    with pytest.raises(ValueError, match=r"at least 1,000 x spec\.gasPrice"):
        StackSettlement.model_validate(to_resource("StackSettlement", body, "ns"))


def test_short_object_ids_are_padded() -> None:
    assert object_id("0x2") == "0x" + "0" * 63 + "2"
    assert object_id("0xAB" + "0" * 62) == "0xab" + "0" * 62
    with pytest.raises(RequestError):
        object_id("0x" + "1" * 65)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[", "not valid JSON"),
        (b"\xff", "not valid JSON"),
        (b"{}", "stack_small_ids"),
        (json.dumps({**SEED, "stack_small_ids": [1, 1]}).encode(), "duplicates"),
        (json.dumps({**SEED, "stack_small_ids": ["1"]}).encode(), "stack_small_ids.0"),
        (json.dumps({**SEED, "extra": 1}).encode(), "extra"),
        (json.dumps({**SEED, "num_claimed_compute_units": -1}).encode(), "num_claimed"),
    ],
)
def test_bad_bodies_name_the_problem(raw: bytes, message: str) -> None:
    with pytest.raises(RequestError, match=message):
        parse(TrySettleRequest, raw)
