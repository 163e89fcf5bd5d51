"""The resource models, the generated CRDs (structural, bounded, up to date) and the CLI."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from admission_cases import BadCase, load_bases, load_cases
from atoma_operator.atoma.hashing import ProofScheme, parse_total_hash
from atoma_operator.cli import main
from atoma_operator.resources import crd
from atoma_operator.resources.attestation import (
    Attestation,
    AttestationEntryStatus,
    AttestationPhase,
    AttestationSpec,
    AttestationStatus,
)
from atoma_operator.resources.common import MAX_SAFE_INTEGER, Condition, ConditionStatus
from atoma_operator.resources.proofs import (
    ValueEncoding,
)
from atoma_operator.resources.stack_settlement import (
    ClaimedAttestationStatus,
    SettlementPhase,
    StackSettlement,
    StackSettlementSpec,
    StackSettlementStackStatus,
    StackSettlementStatus,
)
from atoma_operator.resources.submission import PendingTransaction
from atoma_operator.sui.types import ObjectRef, SignedTransaction

ROOT = Path(__file__).resolve().parents[2]
MODELS: dict[str, type[BaseModel]] = {
    "StackSettlement": StackSettlement,
    "Attestation": Attestation,
}
NOW = datetime(2025, 3, 21, 12, 0, tzinfo=UTC)
GAS_COIN = "0x" + "5c" * 32


def _example_resources() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] in MODELS]
    return docs


# ---------------------------------------------------------------- models


def test_examples_and_bases_are_valid_models() -> None:
    resources = _example_resources() + list(load_bases().values())
    assert {r["kind"] for r in resources} == set(MODELS)
    for resource in resources:
        MODELS[resource["kind"]].model_validate(resource)


def _loc_path(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    # pydantic adds the validator's name for function validators, e.g. "function-after[...]"
    return tuple(p for p in loc if not (isinstance(p, str) and "[" in p))


@pytest.mark.parametrize("case", load_cases(), ids=lambda c: c.id)
def test_models_reject_every_bad_case_at_the_named_field(case: BadCase) -> None:
    with pytest.raises(ValidationError) as raised:
        MODELS[case.kind].model_validate(case.resource)
    locations = [_loc_path(error["loc"]) for error in raised.value.errors()]
    # Whole-object rules report at the object; field rules at the field or below it.
    assert any(
        case.field_parts[: len(loc)] == loc or loc[: len(case.field_parts)] == case.field_parts
        for loc in locations
    ), locations


def _settlement_spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = copy.deepcopy(load_bases()["StackSettlement"]["spec"])
    spec.update(changes)
    return spec


def test_spec_reads_camel_case_and_exposes_snake_case() -> None:
    spec = StackSettlementSpec.model_validate(_settlement_spec())
    assert spec.stack_small_ids == [1201, 1202]
    assert spec.num_claimed_compute_units == 5000
    assert spec.proof_scheme is ProofScheme.CONTRACT
    assert spec.proof_for(1202).is_precomputed
    assert not spec.proof_for(1201).is_precomputed
    with pytest.raises(KeyError):
        spec.proof_for(7)
    assert spec.to_k8s() == _settlement_spec()


def test_optional_request_fields_may_be_omitted() -> None:
    spec = StackSettlementSpec.model_validate(
        {
            k: v
            for k, v in _settlement_spec().items()
            if k not in {"nodeSmallId", "gas", "gasBudget", "gasPrice", "proofScheme"}
        }
    )
    assert (spec.node_small_id, spec.gas, spec.gas_budget, spec.gas_price) == (None,) * 4
    assert "gasBudget" not in spec.to_k8s()


@pytest.mark.parametrize(
    "total_hash",
    ["0x" + "ab" * 32, "AB" * 64, "0x" + "aB" * 96],
    ids=["0x-prefix", "uppercase", "mixed-case-3-requests"],
)
def test_total_hash_accepts_prefix_and_either_case(total_hash: str) -> None:
    spec = StackSettlementSpec.model_validate(
        _settlement_spec(
            proofs=[{"stackSmallId": 1201, "totalHash": total_hash}], stackSmallIds=[1201]
        )
    )
    assert b"".join(parse_total_hash(spec.proofs[0].total_hash or "")) == bytes.fromhex(
        total_hash.removeprefix("0x")
    )


def test_numbers_must_be_integers_not_strings_or_bools() -> None:
    for bad in ("5000", True, 5000.5):
        with pytest.raises(ValidationError):
            StackSettlementSpec.model_validate(_settlement_spec(numClaimedComputeUnits=bad))
    StackSettlementSpec.model_validate(_settlement_spec(numClaimedComputeUnits=MAX_SAFE_INTEGER))


def test_attestation_without_node_uses_total_hashes() -> None:
    spec = AttestationSpec.model_validate(
        {"stackSmallIds": [3], "proofs": [{"stackSmallId": 3, "totalHash": "00" * 32}]}
    )
    assert spec.node_small_id is None
    binary = load_bases()["Attestation"]["spec"]["proofs"][0]["valueFrom"]
    source = AttestationSpec.model_validate(load_bases()["Attestation"]["spec"]).proofs[0]
    assert source.value_from is not None
    assert source.value_from.effective_encoding is ValueEncoding.BINARY
    assert source.value_from.secret_key_ref is not None
    assert source.value_from.secret_key_ref.key == binary["secretKeyRef"]["key"]


def _signed() -> SignedTransaction:
    return SignedTransaction(
        digest="8Yq3yTn1pRzD9c7eP6wFqk2uHbXn4sJmVd5LgA1oTrEw",
        tx_bytes_b64="AAACAAgB" * 20,
        signatures=("AKl" + "x" * 129,),
        gas_coin=ObjectRef(object_id=GAS_COIN, version=981, digest="3vLk8Jf7Hq2p"),
        gas_budget=50_000_000,
        gas_price=750,
    )


def test_pending_transaction_round_trips_a_signed_transaction() -> None:
    pending = PendingTransaction.from_signed(_signed(), attempt=2, recorded_at=NOW)
    wire = pending.to_k8s()
    assert wire["gasCoin"] == {"objectId": GAS_COIN, "version": 981, "digest": "3vLk8Jf7Hq2p"}
    assert wire["recordedAt"] == "2025-03-21T12:00:00Z"
    assert PendingTransaction.model_validate(wire).to_signed() == _signed()


def test_settlement_status_round_trips_in_camel_case() -> None:
    status = StackSettlementStatus(
        observed_generation=1,
        conditions=[
            Condition(
                type="Ready",
                status=ConditionStatus.FALSE,
                reason="WaitingForAttestations",
                message="1 of 2 attestations",
                observed_generation=1,
                last_transition_time=NOW,
            )
        ],
        tx_digests=["8Yq3yTn1pRzD9c7eP6wFqk2uHbXn4sJmVd5LgA1oTrEw"],
        stacks=[
            StackSettlementStackStatus(
                stack_small_id=1201,
                phase=SettlementPhase.SETTLING,
                tx_digest="8Yq3yTn1pRzD9c7eP6wFqk2uHbXn4sJmVd5LgA1oTrEw",
                attempts=1,
                gas_used_mist=-1200,
                selected_node_id=42,
                num_claimed_compute_units=5000,
                settlement_time=NOW,
                attestation_status=ClaimedAttestationStatus.PENDING,
                requested_attestation_nodes=[57, 57, 63],
                received_attestations=1,
                required_attestations=2,
                dispute_settled_at_epoch=812,
                settlement_complete=False,
                claimed=False,
            ),
            StackSettlementStackStatus(
                stack_small_id=1202,
                phase=SettlementPhase.SUBMITTING,
                attempts=1,
                pending=PendingTransaction.from_signed(_signed(), attempt=1, recorded_at=NOW),
            ),
        ],
    )
    wire = status.to_k8s()
    first = wire["stacks"][0]
    assert first["requestedAttestationNodes"] == [57, 57, 63]
    assert first["attestationStatus"] == "Pending"
    assert first["phase"] == "Settling"
    assert "pending" not in first and "lastError" not in first
    assert wire["conditions"][0]["lastTransitionTime"] == "2025-03-21T12:00:00Z"
    assert wire["stacks"][1]["pending"]["txBytes"] == _signed().tx_bytes_b64
    assert StackSettlementStatus.model_validate(wire) == status
    stack = status.stack(1202)
    assert stack is not None
    assert stack.phase is SettlementPhase.SUBMITTING
    assert status.stack(9) is None


def test_attestation_status_entries_and_lookup() -> None:
    status = AttestationStatus.model_validate(
        {
            "attestations": [
                {"stackSmallId": 3, "nodeSmallId": 57, "slot": 2, "phase": "Attested"},
            ],
            "fieldFromANewerOperator": {"kept": False},
        }
    )
    entry = status.entry(3, 57)
    assert entry is not None
    assert (entry.slot, entry.phase, entry.attempts) == (2, AttestationPhase.ATTESTED, 0)
    assert status.entry(3, 58) is None
    with pytest.raises(ValidationError):
        AttestationEntryStatus.model_validate({"stackSmallId": 3, "nodeSmallId": 57, "slot": 0})


def test_status_rejects_what_the_apiserver_would() -> None:
    with pytest.raises(ValidationError):
        Condition.model_validate(
            {
                "type": "Ready",
                "status": "Yes",
                "reason": "not camel case",
                "message": "",
                "lastTransitionTime": "2025-03-21T12:00:00Z",
            }
        )
    with pytest.raises(ValidationError):  # timestamps need a zone
        StackSettlementStackStatus(stack_small_id=1, settlement_time=datetime(2025, 1, 1))


# ---------------------------------------------------------------- structural schema


def structural_violations(schema: Any, path: str = "") -> Iterator[str]:
    """What makes a CRD schema non-structural, or unbounded for CEL cost estimation."""
    if not isinstance(schema, dict):
        yield f"{path}: not a schema object"
        return
    for banned in ("$ref", "$defs", "anyOf", "oneOf", "allOf", "not", "definitions"):
        if banned in schema:
            yield f"{path}: has {banned}"
    if schema.get("uniqueItems"):
        yield f"{path}: uniqueItems (use x-kubernetes-list-type: set)"
    if "additionalProperties" in schema and "properties" in schema:
        yield f"{path}: additionalProperties next to properties"
    opaque = schema.get("x-kubernetes-int-or-string") or schema.get(
        "x-kubernetes-preserve-unknown-fields"
    )
    kind = schema.get("type")
    if kind is None and not opaque:
        yield f"{path}: no type"
    if kind == "string" and "maxLength" not in schema and "enum" not in schema:
        yield f"{path}: string without maxLength"
    if kind == "array":
        if "maxItems" not in schema:
            yield f"{path}: array without maxItems"
        if "items" not in schema:
            yield f"{path}: array without items"
        else:
            yield from structural_violations(schema["items"], f"{path}[]")
    if kind == "integer" and schema.get("format") != "int64":
        yield f"{path}: integer without format int64"
    for name, sub in schema.get("properties", {}).items():
        yield from structural_violations(sub, f"{path}.{name}")
    for key in schema.get("x-kubernetes-list-map-keys", []):
        if key not in schema.get("items", {}).get("required", []):
            yield f"{path}: list-map key {key} is not required"


def test_structural_checker_catches_what_it_should() -> None:
    bad = {
        "type": "object",
        "properties": {
            "a": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "b": {"type": "string"},
            "c": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
            "d": {"$ref": "#/$defs/X"},
        },
    }
    problems = list(structural_violations(bad))
    assert ".a: has anyOf" in problems
    assert ".b: string without maxLength" in problems
    assert ".c: array without maxItems" in problems
    assert ".c: uniqueItems (use x-kubernetes-list-type: set)" in problems
    assert ".c[]: integer without format int64" in problems
    assert ".d: no type" in problems


def _crd(kind: str) -> dict[str, Any]:
    return next(c for c in crd.custom_resource_definitions() if c["spec"]["names"]["kind"] == kind)


def _root(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = _crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_generated_schemas_are_structural_and_bounded(kind: str) -> None:
    root = _root(kind)
    for part in ("spec", "status"):
        assert list(structural_violations(root["properties"][part], part)) == []
    assert root["required"] == ["spec"]


def test_converter_refuses_what_has_no_structural_form() -> None:
    with pytest.raises(crd.SchemaError, match="anyOf"):
        crd.structural({"anyOf": [{"type": "string"}, {"type": "integer"}]})
    with pytest.raises(crd.SchemaError, match="unsupported JSON Schema keyword 'const'"):
        crd.structural({"type": "string", "const": "x"})
    with pytest.raises(crd.SchemaError, match="next to properties"):
        crd.structural(
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "additionalProperties": True,
            }
        )
    # A map (label selectors) is structural: additionalProperties without properties.
    assert crd.structural({"type": "object", "additionalProperties": {"type": "string"}}) == {
        "type": "object",
        "additionalProperties": {"type": "string"},
    }
    converted = crd.structural(
        {
            "anyOf": [{"$ref": "#/$defs/N"}, {"type": "null"}],
            "default": None,
            "description": "field   text",
            "$defs": {"N": {"type": "integer", "title": "N", "description": "model"}},
        }
    )
    assert converted == {"description": "field text", "type": "integer", "format": "int64"}


def test_crd_shape() -> None:
    for kind, plural, short in (
        ("StackSettlement", "stacksettlements", "stl"),
        ("Attestation", "attestations", "atst"),
    ):
        definition = _crd(kind)
        assert definition["metadata"]["name"] == f"{plural}.atoma.network"
        names = definition["spec"]["names"]
        assert (names["plural"], names["shortNames"], names["categories"]) == (
            plural,
            [short],
            ["atoma"],
        )
        assert definition["spec"]["scope"] == "Namespaced"
        (version,) = definition["spec"]["versions"]
        assert (version["name"], version["served"], version["storage"]) == (
            "v1alpha1",
            True,
            True,
        )
        assert version["subresources"] == {"status": {}}
        columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
        count = "Settled" if kind == "StackSettlement" else "Attested"
        assert list(columns) == [
            *("Stacks", "Node", count, "Ready", "Reason", "Age", "Digests", "Message")
        ]
        assert columns["Message"]["priority"] == columns["Digests"]["priority"] == 1
        assert columns["Node"]["jsonPath"].startswith(".status."), "spec's node may be omitted"
        spec = _root(kind)["properties"]["spec"]
        immutable = [r for r in spec["x-kubernetes-validations"] if r["rule"] == "self == oldSelf"]
        assert immutable[0]["message"] == f"spec is immutable: create a new {kind} to submit again"


def test_list_types_match_their_semantics() -> None:
    spec = _root("StackSettlement")["properties"]["spec"]["properties"]
    status = _root("StackSettlement")["properties"]["status"]["properties"]
    assert spec["stackSmallIds"]["x-kubernetes-list-type"] == "set"
    assert spec["proofs"]["x-kubernetes-list-map-keys"] == ["stackSmallId"]
    assert status["conditions"]["x-kubernetes-list-type"] == "map"
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    stack = status["stacks"]["items"]["properties"]
    # sampling is with replacement: a node may appear twice, so not a set
    assert stack["requestedAttestationNodes"]["x-kubernetes-list-type"] == "atomic"
    assert stack["phase"]["enum"] == [p.value for p in SettlementPhase]
    attestations = _root("Attestation")["properties"]["status"]["properties"]["attestations"]
    assert attestations["x-kubernetes-list-map-keys"] == ["stackSmallId", "nodeSmallId"]
    assert spec["stackSmallIds"]["items"]["maximum"] == MAX_SAFE_INTEGER


# ---------------------------------------------------------------- committed output and CLI


def test_committed_crds_are_up_to_date() -> None:
    problems = crd.check_crds([ROOT / "crds"])
    assert not problems, "crds/ is stale: run `make crds`\n" + "\n".join(problems)


def test_cli_writes_checks_and_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert main(["crds", "--out", str(first), "--out", str(second)]) == 0
    names = sorted(p.name for p in first.iterdir())
    assert names == [
        "atoma.network_attestations.yaml",
        "atoma.network_settlementpolicies.yaml",
        "atoma.network_stacksettlements.yaml",
    ]
    assert sorted(p.name for p in second.iterdir()) == names
    assert main(["crds", "--check", "--out", str(first)]) == 0

    (second / names[0]).write_text("stale\n")
    capsys.readouterr()
    assert main(["crds", "--check", "--out", str(first), "--out", str(second)]) == 1
    assert "run `make crds`" in capsys.readouterr().err

    assert main(["crds"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["metadata"]["name"] for d in docs] == [
        "stacksettlements.atoma.network",
        "attestations.atoma.network",
        "settlementpolicies.atoma.network",
    ]


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"atoma-operator {version('atoma-operator')}"
