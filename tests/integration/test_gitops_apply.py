"""The GitOps example manifests pass the real apiserver's validation (schema and CEL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from atoma_dev.controlplane import ControlPlane

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_FILES = sorted((REPO_ROOT / "crds").glob("*.yaml"))
PROD = REPO_ROOT / "examples" / "kustomize" / "overlays" / "prod"


@pytest.mark.skipif(not CRD_FILES, reason="crds/ is empty: run `atoma-operator crds`")
def test_prod_overlay_is_accepted_by_the_apiserver(control_plane: ControlPlane) -> None:
    control_plane.apply_crds(CRD_FILES)
    # The overlay names its namespace; a server-side dry run needs it to exist.
    exists = control_plane.kubectl("get", "namespace", "atoma-prod", "--ignore-not-found")
    if not exists.stdout.strip():
        control_plane.kubectl("create", "namespace", "atoma-prod")
    result = control_plane.kubectl(
        "apply", "--dry-run=server", "-k", str(PROD), "-o", "name", check=False
    )
    assert result.returncode == 0, result.stderr
    applied = result.stdout.split()
    assert sum(name.startswith("stacksettlement") for name in applied) >= 2
