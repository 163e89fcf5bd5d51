"""The GitOps examples render (kustomize via kubectl) into what the README promises."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from atoma_dev.binaries import kubectl_binary

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
PROD = EXAMPLES / "kustomize" / "overlays" / "prod"


def kustomize(path: Path) -> list[dict[str, Any]]:
    try:
        kubectl = kubectl_binary()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    out = subprocess.run(
        [str(kubectl), "kustomize", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    # BaseLoader: keep 0x… hashes as strings (YAML 1.1 would read them as integers).
    return [d for d in yaml.load_all(out, Loader=yaml.BaseLoader) if d]


def test_prod_overlay_sets_namespace_labels_and_keeps_records() -> None:
    objects = kustomize(PROD)
    settlements = [o for o in objects if o["kind"] == "StackSettlement"]
    assert len(settlements) >= 2
    for obj in objects:
        assert obj["metadata"]["namespace"] == "atoma-prod"
        assert obj["metadata"]["labels"]["atoma.network/environment"] == "prod"
    for obj in settlements:
        annotations = obj["metadata"]["annotations"]
        assert annotations["kustomize.toolkit.fluxcd.io/prune"] == "disabled"
        assert annotations["argocd.argoproj.io/sync-options"] == "Prune=false"


def test_referenced_proof_configmaps_are_in_the_same_overlay() -> None:
    objects = kustomize(PROD)
    configmaps = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "ConfigMap"}
    for obj in (o for o in objects if o["kind"] == "StackSettlement"):
        for proof in obj["spec"]["proofs"]:
            ref = proof.get("valueFrom", {}).get("configMapKeyRef")
            if ref is None:
                continue
            value = configmaps[ref["name"]][ref["key"]]
            hex_digits = value.removeprefix("0x")
            assert len(hex_digits) % 64 == 0 and int(hex_digits, 16) >= 0


def test_flux_kustomization_waits_on_the_overlay() -> None:
    docs = {
        d["kind"]: d
        for p in sorted((EXAMPLES / "flux").glob("*.yaml"))
        for d in yaml.safe_load_all(p.read_text())
    }
    kustomization = docs["Kustomization"]
    assert kustomization["spec"]["wait"] is True
    assert (REPO_ROOT / kustomization["spec"]["path"]).resolve() == PROD.resolve()
    assert kustomization["spec"]["sourceRef"] == {
        "kind": "GitRepository",
        "name": docs["GitRepository"]["metadata"]["name"],
    }
