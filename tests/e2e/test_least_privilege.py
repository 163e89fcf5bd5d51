"""The whole settle flow with the operator holding only the Helm chart's RBAC.

The chart is installed into the real control plane, the operator authenticates with a
token of the chart's ServiceAccount (issued by the apiserver), settles a StackSettlement
in a watched namespace, and the same identity is refused everything outside its role.
No kubelet runs: the chart's Deployment never starts a pod; the operator runs in-process
with exactly the credentials that pod would have.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Localnet, apply, get, is_true, settlement, wait_until
from kopf.testing import KopfRunner

from atoma_dev.controlplane import ControlPlane
from helm_support import CHART_DIR, HelmUnavailable, helm_binary, run_helm, values_file

pytestmark = pytest.mark.e2e

STATE_CONFIGMAP = "atoma-operator-state"  # the chart's default stateConfigMap


@pytest.fixture(scope="module", autouse=True)
def _helm() -> None:
    try:
        helm_binary()
    except HelmUnavailable as exc:
        pytest.skip(str(exc))


@contextlib.contextmanager
def _installed(
    cp: ControlPlane, namespace: str, values: dict[str, Any], tmp: Path
) -> Iterator[str]:
    """`helm install` the chart (random release: its ClusterRoles are cluster-scoped)."""
    release = f"lp{secrets.token_hex(3)}"
    run_helm(
        "install", release, str(CHART_DIR), "--namespace", namespace,
        "--values", str(values_file(values, tmp)),
        kubeconfig=cp.kubeconfig,
    )  # fmt: skip
    try:
        yield release
    finally:
        run_helm("uninstall", release, "--namespace", namespace, kubeconfig=cp.kubeconfig)


@contextlib.contextmanager
def _extra_namespace(cp: ControlPlane, base: str, suffix: str) -> Iterator[str]:
    name = f"{base[:50]}-{suffix}"
    cp.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        cp.kubectl("delete", "namespace", name, "--wait=false", check=False)


SPEND_LIMIT = {"mist": 10**12, "periodSeconds": 3600}


def _chart_values(localnet: Localnet, watched: str, **extra: Any) -> dict[str, Any]:
    """Chart values for this stand-in; CRDs stay with the session fixture (not Helm's).
    The chart's SettlementPolicy selects `watched`."""
    dev = localnet.dev
    return {
        "crds": {"install": False},
        "policy": {"namespaces": [watched], "spendLimit": SPEND_LIMIT},
        "atoma": {
            "packageId": localnet.info["package_id"],
            "dbId": localnet.info["atoma_db_id"],
            "badges": [
                {"objectId": b["object_id"], "nodeSmallId": b["node_small_id"]}
                for b in dev["badges"]
            ],
        },
        **extra,
    }


def _fresh_stacks(localnet: Localnet, count: int) -> list[int]:
    """Stacks no other test's leftover resource names (namespaces never finish deleting)."""
    dev = localnet.dev
    node = dev["badges"][0]["node_small_id"]
    return [
        int(
            localnet.admin("/stack", {"selected_node_id": node, "owner": dev["address"]})[
                "stack_small_id"
            ]
        )
        for _ in range(count)
    ]


def _whoami(cp: ControlPlane, kubeconfig: Path) -> str:
    out = cp.kubectl("auth", "whoami", "-o", "json", kubeconfig=kubeconfig).stdout
    username: str = json.loads(out)["status"]["userInfo"]["username"]
    return username


def _forbidden(cp: ControlPlane, kubeconfig: Path, *args: str) -> bool:
    """Run a real request (not `can-i`) as `kubeconfig`; True when the apiserver says 403."""
    result = cp.kubectl(*args, kubeconfig=kubeconfig, check=False)
    return result.returncode != 0 and "forbidden" in result.stderr.lower()


def _assert_charged(cp: ControlPlane, policy: str, obj: dict[str, Any]) -> None:
    """The spend ledger was written with the operator's token: 2 stacks x the default budget."""
    ledger = json.loads(cp.kubectl("get", "settlementpolicy", policy, "-o", "json").stdout)
    assert ledger["status"]["period"]["committedMist"] == 2 * 50_000_000
    assert [c["policy"] for c in obj["status"]["policyCharges"]] == [policy]


def _settle_as(
    cp: ControlPlane,
    localnet: Localnet,
    monkeypatch: pytest.MonkeyPatch,
    kubeconfig: Path,
    watched: str,
    args: list[str],
) -> tuple[dict[str, Any], str]:
    """Run the operator with `kubeconfig`, settle two fresh stacks in `watched`."""
    stacks = _fresh_stacks(localnet, 2)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    # SettlementPolicy enforcement on: the chart's policy (for `watched`, with a spend
    # limit) is read, and its ledger written, with the chart's own token.
    monkeypatch.setenv("ATOMA_POLICY_ENFORCED", "true")
    if "-n" in args:  # the operator's own watch serves ATOMA_NAMESPACES, as the chart sets
        monkeypatch.setenv("ATOMA_NAMESPACES", f'["{args[args.index("-n") + 1]}"]')
    with KopfRunner(args, timeout=60) as runner:
        apply(cp, settlement("least-priv", watched, stacks))

        def ready() -> dict[str, Any] | None:
            obj = get(cp, "stl", watched, "least-priv")
            return obj if is_true(obj, "Ready") else None

        obj = wait_until(ready, timeout=90, what="StackSettlement Ready")
        # Events are posted in the background: wait for them while the operator runs.
        wait_until(
            lambda: "Submitted" in _event_reasons(cp, watched, "least-priv"),
            timeout=30,
            what="the operator's Submitted Event",
        )
    assert runner.exit_code == 0
    status = obj["status"]
    assert [s["stackSmallId"] for s in status["stacks"]] == stacks
    assert len(status["txDigests"]) == 2
    for digest in status["txDigests"]:
        assert localnet.executions(digest) == 1
    return obj, runner.output


def _event_reasons(cp: ControlPlane, namespace: str, name: str) -> set[str]:
    """Reasons of the Events about object `name` (kopf.event -> core/v1 events create)."""
    events = json.loads(cp.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)
    return {e["reason"] for e in events["items"] if e["involvedObject"]["name"] == name}


def _assert_operator_wrote_with_its_role(cp: ControlPlane, operator_ns: str, output: str) -> None:
    # The follower's cursor: created (then patched) in the operator's own namespace.
    state = json.loads(
        cp.kubectl("get", "configmap", STATE_CONFIGMAP, "-n", operator_ns, "-o", "json").stdout
    )
    assert state["data"].get("eventCursor")
    # Nothing the operator tried was refused: its role is sufficient, not just tolerated.
    assert "forbidden" not in output.lower(), output[-4000:]


def test_settles_as_the_chart_service_account_cluster_scope(
    crds: ControlPlane,
    localnet: Localnet,
    namespace: str,
    operator_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    with (
        _extra_namespace(crds, namespace, "work") as watched,
        _extra_namespace(crds, namespace, "other") as other,
        _installed(crds, namespace, _chart_values(localnet, watched), tmp_path) as release,
    ):
        sa = f"{release}-atoma-operator"
        kc = crds.token_kubeconfig(namespace, sa)
        assert _whoami(crds, kc) == f"system:serviceaccount:{namespace}:{sa}"
        crds.kubectl("create", "secret", "generic", "not-yours", "-n", other,
                     "--from-literal=k=v")  # fmt: skip

        obj, output = _settle_as(
            crds, localnet, monkeypatch, kc, watched,
            ["run", "-A", "--standalone", "-m", "atoma_operator.handlers"],
        )  # fmt: skip
        assert obj["metadata"]["namespace"] == watched
        _assert_operator_wrote_with_its_role(crds, namespace, output)
        _assert_charged(crds, f"{release}-atoma-operator-{namespace}", obj)

        # Outside the role: real requests with the operator's token, refused by the apiserver.
        crd = "stacksettlements.atoma.network"
        assert _forbidden(crds, kc, "get", "secrets", "-n", other)  # list secrets elsewhere
        assert _forbidden(crds, kc, "get", "secrets", "-A")  # list secrets cluster-wide
        assert _forbidden(crds, kc, "delete", "crd", crd, "--wait=false")
        assert _forbidden(crds, kc, "delete", "stl", "least-priv", "-n", watched, "--wait=false")
        assert _forbidden(crds, kc, "create", "configmap", "x", "-n", other)
        assert _forbidden(crds, kc, "create", "namespace", f"{namespace[:50]}-nope")
        # ...and they did not happen.
        crds.kubectl("get", "crd", crd)
        get(crds, "stl", watched, "least-priv")


def test_settles_as_the_chart_service_account_namespaced_scope(
    crds: ControlPlane,
    localnet: Localnet,
    namespace: str,
    operator_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    with (
        _extra_namespace(crds, namespace, "work") as watched,
        _extra_namespace(crds, namespace, "other") as other,
    ):
        values = _chart_values(
            localnet, watched, rbac={"scope": "namespaced"}, watchNamespaces=[watched]
        )
        with _installed(crds, namespace, values, tmp_path) as release:
            sa = f"{release}-atoma-operator"
            kc = crds.token_kubeconfig(namespace, sa)
            crds.kubectl("create", "secret", "generic", "not-yours", "-n", other,
                         "--from-literal=k=v")  # fmt: skip
            # A resource in a namespace the operator does not serve: it must stay untouched.
            stranger = settlement("stranger", other, _fresh_stacks(localnet, 1))
            apply(crds, stranger)

            obj, output = _settle_as(
                crds, localnet, monkeypatch, kc, watched,
                ["run", "--standalone", "-n", watched, "-m", "atoma_operator.handlers"],
            )  # fmt: skip
            assert obj["metadata"]["namespace"] == watched
            _assert_operator_wrote_with_its_role(crds, namespace, output)
            untouched = get(crds, "stl", other, "stranger")
            assert "status" not in untouched
            assert not untouched["metadata"].get("finalizers")

            crd = "stacksettlements.atoma.network"
            assert _forbidden(crds, kc, "get", "stl", "-n", other)
            assert _forbidden(crds, kc, "get", "stl", "-A")
            assert _forbidden(crds, kc, "get", "secret", "not-yours", "-n", other)
            assert _forbidden(crds, kc, "get", "secrets", "-n", watched)  # get by name only
            assert _forbidden(crds, kc, "get", "secrets", "-A")
            assert _forbidden(crds, kc, "get", "crd", crd)  # rbac.readCRDs defaults to false
            assert _forbidden(crds, kc, "delete", "crd", crd, "--wait=false")
            crds.kubectl("get", "crd", crd)
