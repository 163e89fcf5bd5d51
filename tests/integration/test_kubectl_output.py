"""What people read with kubectl, from a real kube-apiserver: the server-side Table of
`kubectl get atoma -A` for resources shaped like the demo's (fits 120 columns, NODE
shows the defaulted node) and `kubectl explain` (every field described, in users' words)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from atoma_dev.controlplane import ControlPlane
from atoma_operator.resources.attestation import (
    AttestationEntryStatus,
    AttestationPhase,
    AttestationStatus,
)
from atoma_operator.resources.common import Condition, ConditionStatus
from atoma_operator.resources.stack_settlement import (
    SettlementPhase,
    StackSettlementStackStatus,
    StackSettlementStatus,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION = "atoma.network", "v1alpha1"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
WIDTH = 120
DEMO_NAMESPACE = "atoma-demo"
"""The demo's namespace: the NAMESPACE cell is rendered with it (tests get unique ones)."""
NODE = 1  # the stand-in's first badge, never named in the demo's specs
STACKS = [1, 2, 3]
DIGESTS = [
    "5urCXaQ4hZ3bN8kL2mVtYw9sRjP6fDgE1cHoTuWxAyBn",
    "FBkwt2vJ9qLmZ4xR7pS3nGdH8cYbK6eUaT1fWoQiVsEr",
    "Gue1bsN5yT8kR2mQ4zX7vLcJ3pWd9hFaE6gSoUiBnYtK",
]
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def plane(control_plane: ControlPlane) -> ControlPlane:
    control_plane.apply_crds([ROOT / "crds"])
    return control_plane


def _ready(reason: str, message: str) -> list[Condition]:
    return [
        Condition(
            type="Ready",
            status=ConditionStatus.TRUE,
            reason=reason,
            message=message,
            observed_generation=1,
            last_transition_time=NOW,
        )
    ]


def _demo_resources() -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(plural, name, spec, status) of the demo's two samples, settled."""
    proofs = {"proofSource": "StateDatabase"}
    settled = StackSettlementStatus(
        observed_generation=1,
        node_small_id=NODE,
        settled="3/3",
        conditions=_ready("Settled", "all 3 stacks settled on chain"),
        tx_digests=DIGESTS,
        stacks=[
            StackSettlementStackStatus(
                stack_small_id=sid,
                phase=SettlementPhase.SETTLED,
                tx_digest=digest,
                selected_node_id=NODE,
                settlement_complete=True,
            )
            for sid, digest in zip(STACKS, DIGESTS, strict=True)
        ],
    )
    spec = {"stackSmallIds": STACKS, "numClaimedComputeUnits": 1000, **proofs}
    yield "stacksettlements", "demo-settlement", spec, settled.to_k8s()
    attested = AttestationStatus(
        observed_generation=1,
        attested="3/3",
        conditions=_ready("Attested", "all 3 attestations on chain"),
        tx_digests=DIGESTS,
        attestations=[
            AttestationEntryStatus(
                stack_small_id=sid,
                node_small_id=NODE,
                slot=1,
                phase=AttestationPhase.ATTESTED,
                tx_digest=digest,
            )
            for sid, digest in zip(STACKS, DIGESTS, strict=True)
        ],
    )
    yield "attestations", "demo-attestation", {"stackSmallIds": STACKS, **proofs}, attested.to_k8s()


def _get(api: client.ApiClient, path: str, accept: str) -> dict[str, Any]:
    """GET with an explicit Accept header, as kubectl sends it."""
    request = api.param_serialize(
        "GET", path, header_params={"Accept": accept}, auth_settings=["BearerToken"]
    )
    response = api.call_api(*request)
    response.read()
    body: dict[str, Any] = json.loads(response.data)
    return body


def _table(api: client.ApiClient, path: str) -> dict[str, Any]:
    table = _get(api, path, TABLE)
    assert table["kind"] == "Table", table
    return table


def _cell(value: Any) -> str:
    return "<none>" if value is None else str(value)


def render(tables: list[tuple[str, dict[str, Any]]], *, wide: bool = False) -> str:
    """As `kubectl get atoma -A` prints server-side Tables: one block per kind (names
    prefixed with kind.group), NAMESPACE first, columns padded by 3 spaces."""
    blocks = []
    for prefix, table in tables:
        shown = [
            i for i, c in enumerate(table["columnDefinitions"]) if wide or c.get("priority", 0) == 0
        ]
        header = ["NAMESPACE"] + [table["columnDefinitions"][i]["name"].upper() for i in shown]
        rows = [header]
        for row in table["rows"]:
            cells = [_cell(row["cells"][i]) for i in shown]
            cells[0] = f"{prefix}/{cells[0]}"  # the Name column comes first
            rows.append([DEMO_NAMESPACE, *cells])
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = [
            "   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def test_get_atoma_all_namespaces_fits_120_columns_and_shows_the_defaulted_node(
    plane: ControlPlane, kube_api: client.ApiClient, namespace: str
) -> None:
    custom = client.CustomObjectsApi(kube_api)
    for plural, name, spec, status in _demo_resources():
        kind = "StackSettlement" if plural == "stacksettlements" else "Attestation"
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}}
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, {**body, "spec": spec}
        )
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, plural, name, {"status": status}
        )
    tables = [
        (f"{kind}.{GROUP}", _table(kube_api, f"/apis/{GROUP}/{VERSION}/{plural}"))
        for kind, plural in (
            ("stacksettlement", "stacksettlements"),
            ("attestation", "attestations"),
        )
    ]
    for _, table in tables:  # only this test's resources (-A lists every namespace)
        table["rows"] = [
            r for r in table["rows"] if r["object"]["metadata"]["namespace"] == namespace
        ]
    text = render(tables)
    print(text)  # the README's quick start shows this output
    width = max(len(line) for line in text.splitlines())
    assert width <= WIDTH, f"{width} columns:\n{text}"
    settlement, attestation = (t for _, t in tables)
    names = [c["name"] for c in settlement["columnDefinitions"]]
    [row] = settlement["rows"]
    cells = dict(zip(names, row["cells"], strict=True))
    assert cells["Node"] == NODE, "NODE must show the node the operator chose"
    assert cells["Settled"] == "3/3" and cells["Ready"] == "True"
    assert cells["Reason"] == "Settled"
    [arow] = attestation["rows"]
    acells = dict(
        zip([c["name"] for c in attestation["columnDefinitions"]], arow["cells"], strict=True)
    )
    assert acells["Node"] == NODE and acells["Attested"] == "3/3"
    wide = render(tables, wide=True)
    assert all(d in wide for d in DIGESTS), "full digests with -o wide"
    assert not any(d in text for d in DIGESTS), "no digests without -o wide"


FORBIDDEN = (
    (re.compile(r"\bseed\b", re.I), "the seed (a name users do not know)"),
    (re.compile(r"\bdef\b"), "a Python definition"),
    (re.compile(r"\b[a-z]+(_[a-z0-9]+)+\("), "a Python function call"),
    (re.compile(r"\b\w+\.py\b"), "a Python module"),
)


def _undescribed(node: dict[str, Any], path: str) -> Iterator[str]:
    for name, sub in (node.get("properties") or {}).items():
        where = f"{path}.{name}"
        description = (sub.get("description") or "").strip()
        if not description:
            yield f"{where}: no description"
        for pattern, what in FORBIDDEN:
            if pattern.search(description):
                yield f"{where}: mentions {what}: {description!r}"
        yield from _undescribed(sub, where)
    if isinstance(node.get("items"), dict):
        yield from _undescribed(node["items"], f"{path}[]")


def test_kubectl_explain_describes_every_spec_and_status_field(
    plane: ControlPlane, kube_api: client.ApiClient
) -> None:
    """From the apiserver's OpenAPI v3 (what `kubectl explain` reads), every kind."""
    openapi = _get(kube_api, f"/openapi/v3/apis/{GROUP}/{VERSION}", "application/json")
    schemas = openapi["components"]["schemas"]
    problems = []
    checked = 0
    for kind in ("StackSettlement", "Attestation", "SettlementPolicy"):
        root = schemas[f"network.atoma.{VERSION}.{kind}"]
        for part in ("spec", "status"):
            node = root["properties"][part]
            if not (node.get("description") or "").strip():
                problems.append(f"{kind}.{part}: no description")
            found = list(_undescribed(node, f"{kind}.{part}"))
            problems += found
            checked += len(node.get("properties") or {})
    assert checked > 20
    assert not problems, "\n".join(problems)
