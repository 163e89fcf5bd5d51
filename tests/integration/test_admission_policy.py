"""The chart's ValidatingAdmissionPolicy against the real kube-apiserver (v1.36).

The policy and its binding are rendered from the chart (helm) and applied as they are;
SettlementPolicy objects are its parameters. Each refusal must name the policy and the
rule. The binding is cluster-wide, so the module removes it again at the end (other tests
in the session create resources in namespaces no policy selects).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atoma_dev.controlplane import ControlPlane
from helm_support import HelmUnavailable, helm_binary, only, render

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOTAL_HASH = "ab" * 32
ADMISSION_LAG = 20.0  # seconds: the apiserver's policy informers pick changes up in ~1 s


@pytest.fixture(scope="module")
def plane(control_plane: ControlPlane) -> Iterator[ControlPlane]:
    try:
        helm_binary()
    except HelmUnavailable as exc:
        pytest.skip(str(exc))
    control_plane.apply_crds([ROOT / "crds"])
    manifests = render({"admission": {"enabled": True}}, release="adm")
    objects = [
        only(manifests, "ValidatingAdmissionPolicy"),
        only(manifests, "ValidatingAdmissionPolicyBinding"),
    ]
    for obj in objects:
        control_plane.kubectl("apply", "-f", "-", input=json.dumps(obj))
    try:
        yield control_plane
    finally:
        for obj in reversed(objects):
            control_plane.kubectl(
                "delete", obj["kind"].lower(), obj["metadata"]["name"], "--ignore-not-found"
            )


def _policy(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "atoma.network/v1alpha1",
        "kind": "SettlementPolicy",
        "metadata": {"name": name},
        "spec": {
            "namespaces": [namespace],
            "nodeSmallIds": [1],
            "maxGasBudget": 1_000_000,
            "maxGasPrice": 1_000,
            **spec,
        },
    }


def _settlement(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "atoma.network/v1alpha1",
        "kind": "StackSettlement",
        "metadata": {"name": name},
        "spec": {
            "stackSmallIds": [7],
            "numClaimedComputeUnits": 10,
            "proofs": [{"stackSmallId": 7, "totalHash": TOTAL_HASH}],
            **spec,
        },
    }


def _create(
    plane: ControlPlane, namespace: str, obj: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    return plane.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(obj), check=False)


def _poll_refusal(plane: ControlPlane, namespace: str, obj: dict[str, Any], *words: str) -> str:
    """Create `obj` until refused with all `words` (policy changes reach admission ~1 s
    later); returns the error. A create that succeeds meanwhile is deleted and retried."""
    deadline = time.monotonic() + ADMISSION_LAG
    last = ""
    while time.monotonic() < deadline:
        result = _create(plane, namespace, obj)
        if result.returncode == 0:
            plane.kubectl("delete", "-n", namespace, obj["kind"].lower(), obj["metadata"]["name"])
        else:
            last = result.stderr
            if all(w in last for w in words):
                return last
        time.sleep(0.2)  # polling interval with a deadline
    raise AssertionError(f"never refused with {words}; last error: {last!r}")


@pytest.fixture
def policy_name(plane: ControlPlane) -> Iterator[str]:
    name = f"adm-{secrets.token_hex(3)}"
    yield name
    plane.kubectl("delete", "settlementpolicy", name, "--ignore-not-found")


def test_the_apiserver_serves_validating_admission_policies(plane: ControlPlane) -> None:
    out = plane.kubectl("api-resources", "--api-group=admissionregistration.k8s.io").stdout
    assert "validatingadmissionpolicies" in out and "admissionregistration.k8s.io/v1" in out
    assert "validatingadmissionpolicybindings" in out


@pytest.mark.parametrize(
    ("spec", "rule", "detail"),
    [
        ({"nodeSmallId": 2}, "BadgeNotAllowed", "node badge 2 is not allowed (allowed: 1)"),
        ({"gasBudget": 1_000_001}, "GasBudgetTooHigh", "exceeds maxGasBudget 1000000"),
        ({"gasPrice": 1_001}, "GasPriceTooHigh", "exceeds maxGasPrice 1000"),
        (
            {
                "proofs": [
                    {"stackSmallId": 7, "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
                ]
            },
            "SecretProofsNotAllowed",
            "allowSecretProofs is false",
        ),
    ],
    ids=["badge", "budget", "price", "secret"],
)
def test_a_disallowed_resource_is_refused_naming_the_rule(
    plane: ControlPlane,
    namespace: str,
    policy_name: str,
    spec: dict[str, Any],
    rule: str,
    detail: str,
) -> None:
    plane.kubectl("apply", "-f", "-", input=json.dumps(_policy(policy_name, namespace)))
    error = _poll_refusal(
        plane, namespace, _settlement("disallowed", **spec), f"SettlementPolicy {policy_name}", rule
    )
    assert detail in error
    assert "ValidatingAdmissionPolicy" in error
    # The same resource within the rules is accepted.
    allowed = _settlement("allowed", nodeSmallId=1, gasBudget=1_000_000, gasPrice=1_000)
    assert _create(plane, namespace, allowed).returncode == 0


def test_attestations_are_checked_too(
    plane: ControlPlane, namespace: str, policy_name: str
) -> None:
    plane.kubectl("apply", "-f", "-", input=json.dumps(_policy(policy_name, namespace)))
    attestation = {
        "apiVersion": "atoma.network/v1alpha1",
        "kind": "Attestation",
        "metadata": {"name": "a"},
        "spec": {
            "stackSmallIds": [7],
            "nodeSmallId": 3,
            "proofs": [{"stackSmallId": 7, "totalHash": TOTAL_HASH}],
        },
    }
    _poll_refusal(plane, namespace, attestation, "BadgeNotAllowed", policy_name)


def test_selection_by_labels_and_secrets_when_allowed(
    plane: ControlPlane, namespace: str, policy_name: str
) -> None:
    plane.kubectl("label", "namespace", namespace, "atoma.network/tenant=blue")
    policy = _policy(policy_name, "unrelated", allowSecretProofs=True)
    policy["spec"]["namespaceSelector"] = {"matchLabels": {"atoma.network/tenant": "blue"}}
    plane.kubectl("apply", "-f", "-", input=json.dumps(policy))
    _poll_refusal(plane, namespace, _settlement("x", nodeSmallId=9), "BadgeNotAllowed")
    secret_proof = _settlement(
        "from-secret",
        proofs=[{"stackSmallId": 7, "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
    )
    assert _create(plane, namespace, secret_proof).returncode == 0


def test_a_policy_change_while_resources_are_pending(
    plane: ControlPlane, namespace: str, policy_name: str
) -> None:
    plane.kubectl("apply", "-f", "-", input=json.dumps(_policy(policy_name, namespace)))
    pending = _settlement("pending", nodeSmallId=1)
    assert _create(plane, namespace, pending).returncode == 0
    # The admin narrows the policy: badge 1 is no longer allowed.
    narrowed = _policy(policy_name, namespace, nodeSmallIds=[5])
    plane.kubectl("apply", "-f", "-", input=json.dumps(narrowed))
    error = _poll_refusal(plane, namespace, _settlement("later", nodeSmallId=1), "BadgeNotAllowed")
    assert "(allowed: 5)" in error
    # The resource admitted earlier stays; the operator's status writes are not blocked
    # (only CREATE is checked; the operator itself refuses it: Stalled, NotPermitted).
    status = {"status": {"observedGeneration": 1}}
    plane.kubectl(
        "patch", "stl", "pending", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps(status),
    )  # fmt: skip
    assert plane.kubectl("get", "stl", "pending", "-n", namespace).returncode == 0


def test_with_no_policy_at_all_creation_is_refused(plane: ControlPlane, namespace: str) -> None:
    """The chart's binding with parameterNotFoundAction Deny. Other tests leave policies
    behind in this control plane, so a copy of the binding selects policies by a label
    none has, for this namespace only: the same as a cluster without any policy."""
    binding = only(render({"admission": {"enabled": True}}, release="adm"),
                   "ValidatingAdmissionPolicyBinding")  # fmt: skip
    assert binding["spec"]["paramRef"] == {"selector": {}, "parameterNotFoundAction": "Deny"}
    label = f"none-{secrets.token_hex(3)}"
    binding["metadata"]["name"] = f"adm-{label}"
    binding["spec"]["paramRef"]["selector"] = {"matchLabels": {"atoma.network/test": label}}
    binding["spec"]["matchResources"] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    }
    plane.kubectl("apply", "-f", "-", input=json.dumps(binding))
    try:
        deadline = time.monotonic() + ADMISSION_LAG
        while True:
            result = _create(plane, namespace, _settlement(f"none-{secrets.token_hex(2)}"))
            if result.returncode != 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # the new binding reaches admission ~1 s later
        assert result.returncode != 0
        assert "ValidatingAdmissionPolicy" in result.stderr
        assert "no params found for policy binding with `Deny`" in result.stderr
    finally:
        plane.kubectl("delete", "validatingadmissionpolicybinding", binding["metadata"]["name"])


def test_a_policy_must_select_some_namespaces(plane: ControlPlane) -> None:
    body = _policy(f"adm-{secrets.token_hex(3)}", "x")
    del body["spec"]["namespaces"]
    result = plane.kubectl("create", "-f", "-", input=json.dumps(body), check=False)
    assert result.returncode != 0
    assert "set namespaces, namespaceSelector or both" in result.stderr
