"""The Argo CD health check (hack/argocd/health-atoma.lua), run by a real Lua 5.1 (lupa).

Argo CD evaluates custom health checks with gopher-lua (Lua 5.1): the same dialect here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

REPO_ROOT = Path(__file__).resolve().parents[2]
LUA_FILE = REPO_ROOT / "hack" / "argocd" / "health-atoma.lua"
CM_PATCH = REPO_ROOT / "examples" / "argocd" / "argocd-cm-patch.yaml"
KINDS = ("StackSettlement", "Attestation")


def health(obj: dict[str, Any]) -> tuple[str, str]:
    """Run the check on ``obj`` as Argo CD would: a global ``obj``, a returned table."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(LUA_FILE.read_text(encoding="utf-8"))
    return str(result["status"]), str(result["message"])


def condition(type_: str, status: str, reason: str = "", message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def resource(
    conditions: list[dict[str, str]] | None, *, generation: int = 1, observed: int | None = 1
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "atoma.network/v1alpha1",
        "kind": "StackSettlement",
        "metadata": {"name": "s", "namespace": "n", "generation": generation},
        "spec": {"stackSmallIds": [1]},
    }
    if conditions is not None:
        obj["status"] = {"conditions": conditions}
        if observed is not None:
            obj["status"]["observedGeneration"] = observed
    return obj


def test_ready_is_healthy() -> None:
    obj = resource([condition("Ready", "True", "Settled", "1 of 1 stacks settled")])
    assert health(obj) == ("Healthy", "1 of 1 stacks settled")


def test_reconciling_is_progressing_with_its_message() -> None:
    obj = resource(
        [
            condition("Ready", "False", "Submitting", "submitting 2 transactions"),
            condition("Reconciling", "True", "WaitingForFinality", "waiting for 0xabc effects"),
        ]
    )
    assert health(obj) == ("Progressing", "waiting for 0xabc effects")


def test_stalled_is_degraded_with_its_message() -> None:
    obj = resource(
        [
            condition("Ready", "False", "InvalidProof", "x"),
            condition("Reconciling", "False"),
            condition(
                "Stalled", "True", "InvalidProof", "totalHash length is not a multiple of 32"
            ),
        ]
    )
    assert health(obj) == ("Degraded", "totalHash length is not a multiple of 32")


def test_stalled_without_message_falls_back_to_reason() -> None:
    obj = resource([condition("Stalled", "True", "Disputed")])
    assert health(obj) == ("Degraded", "Disputed")


@pytest.mark.parametrize("conditions", [None, []], ids=["no-status", "no-conditions"])
def test_no_status_is_progressing(conditions: list[dict[str, str]] | None) -> None:
    status, message = health(resource(conditions))
    assert status == "Progressing"
    assert "Waiting for the operator" in message


@pytest.mark.parametrize("observed", [1, None], ids=["older", "missing"])
def test_stale_generation_is_progressing_even_if_ready(observed: int | None) -> None:
    obj = resource([condition("Ready", "True", "Settled", "done")], generation=2, observed=observed)
    assert health(obj) == ("Progressing", "Waiting for the operator to observe generation 2")


def test_not_ready_without_reconciling_or_stalled_stays_progressing() -> None:
    obj = resource([condition("Ready", "False", "Pending", "queued behind gas coin 0x1")])
    assert health(obj) == ("Progressing", "queued behind gas coin 0x1")


def test_argocd_cm_patch_embeds_the_lua_file_for_both_kinds() -> None:
    patch = yaml.safe_load(CM_PATCH.read_text(encoding="utf-8"))
    assert patch["kind"] == "ConfigMap" and patch["metadata"]["name"] == "argocd-cm"
    lua = LUA_FILE.read_text(encoding="utf-8")
    expected = {f"resource.customizations.health.atoma.network_{kind}": lua for kind in KINDS}
    assert patch["data"] == expected
