"""The Helm chart: lint, rendered objects, schema refusals, install and RBAC on a real apiserver.

Rendering tests need only the helm binary (tests/helm_support.py); install and RBAC tests
use the session control plane. There is no kubelet: pods never run, objects must exist.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from atoma_dev.controlplane import ControlPlane
from atoma_operator import metrics
from atoma_operator.settings import Settings
from helm_support import (
    CHART_DIR,
    REPO_ROOT,
    USUAL_OVERRIDES,
    HelmUnavailable,
    Manifest,
    find,
    helm_binary,
    only,
    render,
    run_helm,
    schema_refusal,
    template,
    values_file,
)

pytestmark = pytest.mark.integration

OID_A = "0x" + "a1" * 32
OID_B = "0x" + "b2" * 32
OID_C = "0x" + "c3" * 32
OID_D = "0x" + "d4" * 32
DEV_KEY = "suiprivkey1qqtestnotarealkeyatallxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

CRD_FILES = sorted((REPO_ROOT / "crds").glob("*.yaml"))
KINDS = ("stacksettlements", "attestations")
RESOURCES = tuple(f"{k}.atoma.network" for k in KINDS)

Rule = tuple[str, str, str, str]  # (apiGroup, resource, verb, resourceName or "")


@pytest.fixture(scope="module", autouse=True)
def _helm() -> None:
    try:
        helm_binary()
    except HelmUnavailable as exc:
        pytest.skip(str(exc))


def _rules(role: Manifest) -> set[Rule]:
    """Flatten a Role/ClusterRole into (group, resource, verb, resourceName) tuples."""
    flat: set[Rule] = set()
    for rule in role["rules"]:
        names = rule.get("resourceNames") or [""]
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    for name in names:
                        flat.add((group, resource, verb, name))
    return flat


def _watch_rules() -> set[Rule]:
    """ConfigMaps: get by name only; Secrets are never in these (see PROOF_SECRET_RULES)."""
    expected: set[Rule] = set()
    for kind in KINDS:
        expected |= {("atoma.network", kind, v, "") for v in ("get", "list", "watch", "patch")}
        expected |= {("atoma.network", f"{kind}/status", v, "") for v in ("get", "patch", "update")}
    for group in ("", "events.k8s.io"):
        expected |= {(group, "events", v, "") for v in ("create", "patch")}
    expected.add(("", "configmaps", "get", ""))
    return expected


POLICY_RULES: set[Rule] = {
    ("atoma.network", "settlementpolicies", "get", ""),
    ("atoma.network", "settlementpolicies", "list", ""),
    ("atoma.network", "settlementpolicies/status", "get", ""),
    ("atoma.network", "settlementpolicies/status", "update", ""),
    ("", "namespaces", "get", ""),
}
PROOF_SECRET_RULES: set[Rule] = {("", "secrets", "get", "")}


CRD_READ: set[Rule] = {
    ("apiextensions.k8s.io", "customresourcedefinitions", v, "") for v in ("get", "list", "watch")
}
STATE_RULES: set[Rule] = {
    ("", "configmaps", "create", ""),
    *{("", "configmaps", v, "atoma-operator-state") for v in ("get", "update", "patch")},
    ("coordination.k8s.io", "leases", "create", ""),
    *{("coordination.k8s.io", "leases", v, "atoma-operator") for v in ("get", "update", "patch")},
}


def _container(manifests: list[Manifest]) -> dict[str, Any]:
    deployment = only(manifests, "Deployment")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]  # type: ignore[no-any-return]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


# -- lint ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"rbac": {"scope": "namespaced", "readCRDs": True}, "watchNamespaces": ["a", "b"]},
    ],
    ids=["default", "namespaced"],
)
def test_helm_lint_passes(values: dict[str, Any], tmp_path: Path) -> None:
    args = ["lint", "--strict", str(CHART_DIR)]
    if values:
        args += ["--values", str(values_file(values, tmp_path))]
    result = run_helm(*args)
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


# -- rendered workload -----------------------------------------------------------------------


def test_deployment_runs_one_restricted_pod() -> None:
    manifests = render()
    deployment = only(manifests, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    # No fixed uid, gid or fsGroup: the platform may pick them (OpenShift does); the image's
    # numeric USER satisfies runAsNonRoot.
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = _container(manifests)
    sc = container["securityContext"]
    assert not {"runAsUser", "runAsGroup"} & set(sc)
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["requests"] and container["resources"]["limits"]
    tmp_mounts = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert len(tmp_mounts) == 1
    tmp_volume = next(v for v in pod["volumes"] if v["name"] == tmp_mounts[0]["name"])
    assert "emptyDir" in tmp_volume
    # Every other mount is read-only.
    assert all(m.get("readOnly") for m in container["volumeMounts"] if m["mountPath"] != "/tmp")


@pytest.mark.parametrize("port", [8081, 9191])
def test_probes_follow_the_liveness_endpoint(port: int) -> None:
    container = _container(render({"health": {"port": port}}))
    assert container["command"] == ["atoma-operator"]
    assert container["args"] == ["run", f"--liveness=http://0.0.0.0:{port}/healthz"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": port, "http-metrics": 8080}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_settings_configmap_is_read_by_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = {
        "sui": {"rpcUrl": "http://sui-node.sui:9000", "requestTimeoutSeconds": 12.5},
        "atoma": {
            "packageId": OID_A,
            "dbId": OID_B,
            "badges": [{"objectId": OID_C, "nodeSmallId": 7}],
        },
        "gas": {"budget": 12_345_678, "price": 1000, "coins": [OID_D]},
        "concurrency": 3,
        "watchNamespaces": ["team-a"],
        "logFormat": "json",
        "stateConfigMap": "my-state",
        "metrics": {"port": 9100},
        "health": {"port": 9101},
        "signingKey": {"existingSecret": "atoma-key", "derivationPath": "m/44'/784'/0'/0'/0'"},
    }
    manifests = render(values)
    text = only(manifests, "ConfigMap", "atoma-operator-settings")["data"]["settings.yaml"]
    loaded = yaml.safe_load(text)
    # Settings ignores unknown keys, so a misspelt key would silently fall back to a default.
    assert set(loaded) <= set(Settings.model_fields)
    config = tmp_path / "settings.yaml"
    config.write_text(text, encoding="utf-8")
    for var in ("ATOMA_KEY_FILE", "ATOMA_SIGNING_KEY", "POD_NAMESPACE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ATOMA_CONFIG_FILE", str(config))
    settings = Settings()
    assert settings.sui_rpc_url == "http://sui-node.sui:9000"
    assert settings.sui_request_timeout_seconds == 12.5
    assert settings.package_id == OID_A
    assert settings.atoma_db_id == OID_B
    assert [(b.object_id, b.node_small_id) for b in settings.badges] == [(OID_C, 7)]
    assert (settings.gas_budget, settings.gas_price, settings.gas_coins) == (
        12_345_678,
        1000,
        [OID_D],
    )
    assert settings.concurrency == 3
    assert settings.namespaces == ["team-a"]
    assert settings.log_format.value == "json"
    assert settings.state_configmap == "my-state"
    assert (settings.metrics_port, settings.health_port) == (9100, 9101)
    assert settings.key_derivation_path == "m/44'/784'/0'/0'/0'"
    container = _container(manifests)
    env = _env(container)
    assert env["ATOMA_CONFIG_FILE"].endswith("/settings.yaml")
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    # The RBAC grant follows the state ConfigMap's name.
    state_role = only(manifests, "Role", "atoma-operator-state")
    assert ("", "configmaps", "update", "my-state") in _rules(state_role)


def test_real_network_settings_render(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Type-origin id, deadlines, start checkpoint and a private CA reach Settings."""
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    values = {
        "sui": {
            "rpcUrl": "https://sui.example:443",
            "executeTimeoutSeconds": 150,
            "streamTimeoutSeconds": 45,
            "caBundle": pem,
        },
        "atoma": {"packageId": OID_A, "typeOriginPackageId": OID_B, "dbId": OID_C},
        "follower": {"startCheckpoint": 1234},
    }
    data = only(render(values), "ConfigMap", "atoma-operator-settings")["data"]
    config = tmp_path / "settings.yaml"
    config.write_text(data["settings.yaml"], encoding="utf-8")
    for var in ("ATOMA_KEY_FILE", "ATOMA_SIGNING_KEY", "POD_NAMESPACE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ATOMA_CONFIG_FILE", str(config))
    settings = Settings()
    assert (settings.package_id, settings.type_origin_package_id) == (OID_A, OID_B)
    assert (settings.sui_execute_timeout_seconds, settings.sui_stream_timeout_seconds) == (
        150,
        45,
    )
    assert settings.follower_start_checkpoint == 1234
    # the bundle is a key of the mounted settings ConfigMap, and the setting points at it
    assert settings.sui_ca_file == Path("/etc/atoma-operator/sui-ca.crt")
    assert data["sui-ca.crt"] == pem
    defaults = yaml.safe_load(only(render(), "ConfigMap")["data"]["settings.yaml"])
    assert "sui_ca_file" not in defaults and "follower_start_checkpoint" not in defaults
    assert "type_origin_package_id" not in defaults


def test_default_settings_leave_optional_ids_to_the_operator() -> None:
    text = only(render(), "ConfigMap")["data"]["settings.yaml"]
    loaded = yaml.safe_load(text)
    assert loaded["gas_budget"] == 50_000_000
    assert "package_id" not in loaded and "gas_price" not in loaded


def test_settings_change_rolls_the_pod() -> None:
    def checksum(values: dict[str, Any]) -> str:
        pod = only(render(values), "Deployment")["spec"]["template"]
        return str(pod["metadata"]["annotations"]["checksum/settings"])

    base = checksum({})
    assert checksum({"concurrency": 9}) != base
    assert checksum({"resources": {"limits": {"memory": "1Gi"}}}) == base


# -- the signing key -------------------------------------------------------------------------


def test_signing_key_comes_from_an_existing_secret_as_a_read_only_file() -> None:
    manifests = render({"signingKey": {"existingSecret": "atoma-key", "key": "suikey"}})
    assert find(manifests, "Secret") == []
    container = _container(manifests)
    pod = only(manifests, "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if "secret" in v)
    assert volume["secret"]["secretName"] == "atoma-key"
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
    assert mount["readOnly"] is True
    assert _env(container)["ATOMA_KEY_FILE"] == f"{mount['mountPath']}/suikey"
    assert "ATOMA_SIGNING_KEY" not in _env(container)


def test_state_database_dsn_comes_from_a_secret_and_is_read_by_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifests = render(
        {
            "stateDatabase": {
                "existingSecret": "atoma-state-db",
                "sslMode": "verify-full",
                "rootCertSecret": "state-db-ca",
            }
        }
    )
    container = _container(manifests)
    dsn = next(e for e in container["env"] if e["name"] == "ATOMA_STATE_DATABASE_DSN")
    assert dsn["valueFrom"]["secretKeyRef"] == {"name": "atoma-state-db", "key": "dsn"}
    env = _env(container)
    mount = next(m for m in container["volumeMounts"] if m["name"] == "state-db-ca")
    assert mount["readOnly"] is True
    assert env["ATOMA_STATE_DATABASE_ROOT_CERT"] == f"{mount['mountPath']}/ca.crt"
    for name in ("SSLMODE", "MAX_CONNECTIONS", "ROOT_CERT"):
        monkeypatch.setenv(f"ATOMA_STATE_DATABASE_{name}", env[f"ATOMA_STATE_DATABASE_{name}"])
    monkeypatch.setenv("ATOMA_STATE_DATABASE_DSN", "postgresql://r:secret@db/atoma")
    settings = Settings()
    assert settings.state_database_sslmode == "verify-full"
    assert settings.state_database_max_connections == 4
    assert "secret" not in repr(settings)
    assert "ATOMA_STATE_DATABASE_DSN" not in _env(_container(render()))


def test_no_key_no_secret_volume() -> None:
    manifests = render()
    assert find(manifests, "Secret") == []
    assert "ATOMA_KEY_FILE" not in _env(_container(manifests))


def test_dev_key_is_only_in_its_secret() -> None:
    out = template({"signingKey": {"create": True, "value": DEV_KEY}}).stdout
    assert DEV_KEY not in out  # only base64 in the Secret's data
    manifests = [d for d in yaml.safe_load_all(out) if d]
    secret = only(manifests, "Secret")
    assert base64.b64decode(secret["data"]["key"]).decode() == DEV_KEY
    pod = only(manifests, "Deployment")["spec"]["template"]
    assert "checksum/signing-key" in pod["metadata"]["annotations"]
    assert any(v.get("secret", {}).get("secretName") == secret["metadata"]["name"]
               for v in pod["spec"]["volumes"])  # fmt: skip


# -- RBAC ------------------------------------------------------------------------------------


def test_cluster_scope_rbac_is_exactly_the_intended_verbs() -> None:
    manifests = render()
    cluster_role = only(manifests, "ClusterRole", "atoma-operator")
    assert _rules(cluster_role) == _watch_rules() | CRD_READ
    assert _rules(only(manifests, "ClusterRole", "atoma-operator-policy")) == POLICY_RULES
    assert len(find(manifests, "ClusterRole")) == 2  # nothing on Secrets cluster-wide
    binding = only(manifests, "ClusterRoleBinding", "atoma-operator")
    assert binding["roleRef"]["name"] == cluster_role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "atoma-operator", "namespace": "atoma-system"}
    ]
    state_role = only(manifests, "Role")
    assert state_role["metadata"]["namespace"] == "atoma-system"
    assert _rules(state_role) == STATE_RULES


@pytest.mark.parametrize("read_crds", [False, True])
def test_namespaced_scope_grants_only_the_watched_namespaces(read_crds: bool) -> None:
    values = {
        "rbac": {"scope": "namespaced", "readProofSecrets": False, "readCRDs": read_crds},
        "watchNamespaces": ["team-a", "team-b"],
    }
    manifests = render(values)
    roles = {r["metadata"]["namespace"]: r for r in find(manifests, "Role")}
    bindings = {b["metadata"]["namespace"]: b for b in find(manifests, "RoleBinding")}
    assert set(roles) == set(bindings) == {"team-a", "team-b", "atoma-system"}
    # team-a/b get the watch rules; the release namespace only the state rules.
    for ns in ("team-a", "team-b"):
        assert _rules(roles[ns]) == _watch_rules()
        assert bindings[ns]["subjects"][0]["namespace"] == "atoma-system"
    assert _rules(roles["atoma-system"]) == STATE_RULES
    cluster_roles = find(manifests, "ClusterRole")
    cluster_bindings = find(manifests, "ClusterRoleBinding")
    # Policies are cluster-scoped: reading them (and their spend ledger) is the one
    # cluster-wide grant besides the optional CRD read.
    expected = [POLICY_RULES, CRD_READ] if read_crds else [POLICY_RULES]
    assert sorted(map(sorted, map(_rules, cluster_roles))) == sorted(map(sorted, expected))
    assert len(cluster_bindings) == len(expected)


@pytest.mark.parametrize(
    ("rbac", "policy", "expected"),
    [
        ({}, {}, set()),
        ({"readProofSecrets": True}, {}, {"atoma-system"}),
        ({"readProofSecrets": True}, {"namespaces": ["team-a", "team-b"]}, {"team-a", "team-b"}),
        (
            {"readProofSecrets": True, "proofSecretNamespaces": ["team-c"]},
            {"namespaces": ["team-a"]},
            {"team-c"},
        ),
    ],
    ids=["off-by-default", "release-namespace", "policy-namespaces", "explicit"],
)
def test_proof_secrets_are_a_role_per_allowed_namespace(
    rbac: dict[str, Any], policy: dict[str, Any], expected: set[str]
) -> None:
    manifests = render({"rbac": rbac, "policy": policy})
    secret_roles = [r for r in find(manifests, "Role") if ("", "secrets", "get", "") in _rules(r)]
    assert {r["metadata"]["namespace"] for r in secret_roles} == expected
    for role in secret_roles:
        assert _rules(role) == PROOF_SECRET_RULES
    for role in find(manifests, "ClusterRole"):
        assert not any(resource == "secrets" for _, resource, _, _ in _rules(role))


def test_default_policy_and_admission_policy_render() -> None:
    values = {"atoma": {"badges": [{"objectId": OID_C, "nodeSmallId": 4}]}}
    manifests = render(values, namespace="team-x")
    policy = only(manifests, "SettlementPolicy")
    assert policy["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    assert policy["spec"]["namespaces"] == ["team-x"]
    assert policy["spec"]["nodeSmallIds"] == [4]
    assert policy["spec"]["allowSecretProofs"] is False
    vap = only(manifests, "ValidatingAdmissionPolicy")
    assert vap["spec"]["paramKind"]["kind"] == "SettlementPolicy"
    binding = only(manifests, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["paramRef"]["parameterNotFoundAction"] == "Deny"
    assert binding["spec"]["validationActions"] == ["Deny"]
    off = render({"policy": {"create": False}, "admission": {"enabled": False}})
    assert not find(off, "SettlementPolicy") and not find(off, "ValidatingAdmissionPolicy")


def test_notes_print_the_active_policy(control_plane: ControlPlane) -> None:
    # NOTES are rendered by install only (a client-side dry run still asks the version).
    text = run_helm(
        "install", "atoma", str(CHART_DIR), "--dry-run=client", "--namespace", "team-x",
        "--set", f"atoma.badges[0].objectId={OID_C}", "--set", "atoma.badges[0].nodeSmallId=4",
        "--set", "policy.spendLimit.mist=1000", "--set", "policy.spendLimit.periodSeconds=3600",
        "--set", "crds.install=false",  # CRDs other tests applied are not this release's
        kubeconfig=control_plane.kubeconfig,
    ).stdout  # fmt: skip
    assert 'SettlementPolicy atoma-operator-team-x: namespaces ["team-x"]' in text
    assert "badges [4], maxGasBudget 50000000 MIST, maxGasPrice 5000 MIST" in text
    assert "spend limit 1000 MIST per 3600 s, no proofs from Secrets" in text
    assert "Proof Secrets readable in: none (rbac.readProofSecrets=false)" in text


def test_no_rule_deletes_or_uses_wildcards() -> None:
    for values in (
        {},
        {"rbac": {"scope": "namespaced", "readCRDs": True}, "watchNamespaces": ["x"]},
    ):
        for role in find(render(values), "Role") + find(render(values), "ClusterRole"):
            for group, resource, verb, _ in _rules(role):
                assert verb not in {"delete", "deletecollection", "*", "escalate", "bind"}
                assert "*" not in (group, resource)
                if resource == "secrets":
                    assert verb == "get"


# -- optional objects ------------------------------------------------------------------------


def test_optional_objects_are_off_by_default() -> None:
    manifests = render()
    kinds = {m["kind"] for m in manifests}
    assert "ServiceMonitor" not in kinds and "PodDisruptionBudget" not in kinds
    assert all(
        m["metadata"].get("labels", {}).get("grafana_dashboard") is None
        for m in find(manifests, "ConfigMap")
    )
    service = only(manifests, "Service")
    assert service["spec"]["ports"] == [
        {"name": "http-metrics", "port": 8080, "targetPort": "http-metrics", "protocol": "TCP"}
    ]


def test_optional_objects_render_when_enabled() -> None:
    values = {
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}},
        "podDisruptionBudget": {"enabled": True},
        "grafana": {"dashboard": {"enabled": True, "namespace": "monitoring"}},
    }
    manifests = render(values)
    monitor = only(manifests, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["endpoints"][0]["port"] == "http-metrics"
    assert only(manifests, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    dashboard = next(
        m
        for m in find(manifests, "ConfigMap")
        if m["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    )
    assert dashboard["metadata"]["namespace"] == "monitoring"
    shipped = json.loads(dashboard["data"]["atoma-operator.json"])
    on_disk = json.loads((CHART_DIR / "dashboards" / "atoma-operator.json").read_text())
    assert shipped == on_disk


def test_dashboard_queries_only_exposed_metric_names() -> None:
    exposed: set[str] = set()
    for name, (type_, _labels) in metrics.catalogue().items():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        exposed |= {name + s for s in suffixes.get(type_, [""])}
    dashboard = json.loads((CHART_DIR / "dashboards" / "atoma-operator.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {n for e in exprs for n in re.findall(r"\batoma_operator_[a-z_]+", e)}
    assert used, "the dashboard queries no operator metric"
    assert used <= exposed, f"unknown metric names: {sorted(used - exposed)}"
    # Every metric the operator exposes appears on the dashboard.
    families = set(metrics.catalogue())
    assert {f for f in families if not any(u.startswith(f) for u in used)} == set()


# -- CRDs ------------------------------------------------------------------------------------


@pytest.mark.skipif(not CRD_FILES, reason="crds/ is empty: run `atoma-operator crds`")
@pytest.mark.parametrize("keep", [True, False])
def test_crds_render_from_the_chart_copy(keep: bool) -> None:
    rendered = {
        m["metadata"]["name"]: m
        for m in find(render({"crds": {"keep": keep}}), "CustomResourceDefinition")
    }
    sources = [yaml.safe_load(p.read_text()) for p in CRD_FILES]
    assert set(rendered) == {s["metadata"]["name"] for s in sources}
    for source in sources:
        crd = rendered[source["metadata"]["name"]]
        # Labels/annotations are added; everything else is the generator's output, exactly
        # (fromYaml turns integers into floats: a bound above 2**53 would show up here).
        assert {k: v for k, v in crd.items() if k != "metadata"} == {
            k: v for k, v in source.items() if k != "metadata"
        }
        annotations = crd["metadata"].get("annotations", {})
        assert (annotations.get("helm.sh/resource-policy") == "keep") is keep
        assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert find(render({"crds": {"install": False}}), "CustomResourceDefinition") == []


# -- schema refusals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"atoma": {"packageId": "0x1234"}}, "/atoma/packageId"),
        ({"atoma": {"dbId": "0x" + "AB" * 32}}, "/atoma/dbId"),
        ({"atoma": {"badges": [{"objectId": OID_A}]}}, "/atoma/badges/0"),
        ({"gas": {"budget": -5}}, "/gas/budget"),
        ({"gas": {"price": 0}}, "/gas/price"),
        ({"gas": {"coins": ["not-a-coin"]}}, "/gas/coins/0"),
        ({"concurency": 4}, "concurency"),
        ({"sui": {"rpcURL": "http://x:9000"}}, "rpcURL"),
        ({"concurrency": 0}, "/concurrency"),
        ({"replicaCount": 2}, "/replicaCount"),
        ({"logFormat": "xml"}, "/logFormat"),
        ({"rbac": {"scope": "namespace"}}, "/rbac/scope"),
        ({"rbac": {"scope": "namespaced"}}, "watchNamespaces"),
        ({"metrics": {"port": 80}}, "/metrics/port"),
        ({"signingKey": {"create": True}}, "/signingKey/value"),
        ({"extraEnv": [{"name": "ATOMA_SIGNING_KEY", "value": "x"}]}, "/extraEnv/0/name"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_schema_refuses_bad_values(values: dict[str, Any], field: str) -> None:
    stderr = schema_refusal(values)
    assert field in stderr, stderr


# -- the real apiserver ----------------------------------------------------------------------


@contextlib.contextmanager
def _installed(
    control_plane: ControlPlane,
    namespace: str,
    values: dict[str, Any],
    tmp_path: Path,
    release: str | None = None,
    *helm_args: str,
) -> Iterator[str]:
    """`helm install` (no --wait: there is no kubelet) and uninstall afterwards.

    Release names are random: ClusterRoles and bindings are cluster-scoped.
    """
    release = release or f"r{secrets.token_hex(3)}"
    run_helm(
        "install",
        release,
        str(CHART_DIR),
        "--namespace",
        namespace,
        "--values",
        str(values_file(values, tmp_path)),
        *helm_args,
        kubeconfig=control_plane.kubeconfig,
    )
    try:
        yield release
    finally:
        run_helm(
            "uninstall", release, "--namespace", namespace, kubeconfig=control_plane.kubeconfig
        )


HELM_OWNERSHIP = ("meta.helm.sh/release-name", "meta.helm.sh/release-namespace")


def _crds_as_if_applied_by_kubectl(kube_api: client.ApiClient) -> list[str]:
    """The CRDs exist and carry no Helm ownership metadata, as after `kubectl apply -f
    crds/` (other tests' releases may have owned them: that is taken off)."""
    ext = client.ApiextensionsV1Api(kube_api)
    names = []
    for path in CRD_FILES:
        body = yaml.safe_load(path.read_text())
        name = body["metadata"]["name"]
        names.append(name)
        try:
            live = ext.read_custom_resource_definition(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
            ext.create_custom_resource_definition(body)
            continue
        annotations = live.metadata.annotations or {}
        labels = live.metadata.labels or {}
        ops = [
            {"op": "remove", "path": f"/metadata/annotations/{key.replace('/', '~1')}"}
            for key in HELM_OWNERSHIP
            if key in annotations
        ]
        if "app.kubernetes.io/managed-by" in labels:
            ops.append({"op": "remove", "path": "/metadata/labels/app.kubernetes.io~1managed-by"})
        if ops:
            ext.patch_custom_resource_definition(name, ops)
    return names


@pytest.mark.skipif(not CRD_FILES, reason="crds/ is empty: run `atoma-operator crds`")
def test_install_creates_every_object(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    values = {
        "atoma": {
            "packageId": OID_A,
            "dbId": OID_B,
            "badges": [{"objectId": OID_C, "nodeSmallId": 1}],
        },
        "signingKey": {"existingSecret": "atoma-key"},
        "grafana": {"dashboard": {"enabled": True}},
        "podDisruptionBudget": {"enabled": True},
    }
    release = f"crd{secrets.token_hex(3)}"
    # Other tests' releases may have left the (kept) CRDs annotated with their names.
    with _installed(control_plane, namespace, values, tmp_path, release, "--take-ownership"):
        manifest = run_helm(
            "get", "manifest", release, "-n", namespace, kubeconfig=control_plane.kubeconfig
        ).stdout
        objects = [d for d in yaml.safe_load_all(manifest) if d]
        kinds = {o["kind"] for o in objects}
        assert {"Deployment", "ServiceAccount", "ClusterRole", "Role", "Service"} <= kinds
        assert {"CustomResourceDefinition", "PodDisruptionBudget", "ConfigMap"} <= kinds
        for obj in objects:
            ns_args = ["-n", obj["metadata"].get("namespace", namespace)]
            got = control_plane.kubectl(
                "get", obj["kind"], obj["metadata"]["name"], *ns_args, "-o", "json"
            )
            live = json.loads(got.stdout)
            assert live["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        for name in (yaml.safe_load(p.read_text())["metadata"]["name"] for p in CRD_FILES):
            control_plane.kubectl("wait", "--for=condition=Established", f"crd/{name}")
    # Kept CRDs outlive the release; the rest is gone.
    for path in CRD_FILES:
        name = yaml.safe_load(path.read_text())["metadata"]["name"]
        control_plane.kubectl("get", "crd", name)
    leftover = control_plane.kubectl(
        "get", "deploy,cm,sa,role,rolebinding,svc", "-n", namespace,
        "-l", f"app.kubernetes.io/instance={release}", "-o", "name",
    )  # fmt: skip
    assert leftover.stdout.strip() == ""


@pytest.mark.skipif(not CRD_FILES, reason="crds/ is empty: run `atoma-operator crds`")
def test_install_adopts_crds_applied_before_and_the_overrides_pass_the_apiserver(
    control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """CRDs applied earlier (kubectl apply -f crds/) are adopted by `helm install
    --take-ownership`, no annotate loop; the usual overrides pass the apiserver's validation
    of every object (Deployment, NetworkPolicy, ...)."""
    names = _crds_as_if_applied_by_kubectl(kube_api)
    ext = client.ApiextensionsV1Api(kube_api)
    for name in names:
        assert not set(HELM_OWNERSHIP) & set(
            ext.read_custom_resource_definition(name).metadata.annotations or {}
        )
    values = copy.deepcopy(USUAL_OVERRIDES)
    values["metrics"]["serviceMonitor"]["enabled"] = False  # no Prometheus Operator CRDs here
    values["extraArgs"] = [f"--namespace={namespace}"]
    values["stateDatabase"] = {"existingSecret": "atoma-state-db"}
    values["networkPolicy"] = {
        "enabled": True,
        "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}],
        "apiServer": {"cidrs": ["10.0.0.1/32"]},
        "egress": [{"to": [{"ipBlock": {"cidr": "10.9.0.0/16"}}], "ports": [{"port": 4317}]}],
    }
    release = f"own{secrets.token_hex(3)}"
    # Without the flag Helm refuses to touch objects it did not create.
    refused = run_helm(
        "install", release, str(CHART_DIR), "--namespace", namespace,
        "--values", str(values_file(values, tmp_path)),
        kubeconfig=control_plane.kubeconfig, check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "invalid ownership metadata" in refused.stderr
    with _installed(control_plane, namespace, values, tmp_path, release, "--take-ownership"):
        for name in names:
            crd = ext.read_custom_resource_definition(name)
            annotations = crd.metadata.annotations
            assert annotations["meta.helm.sh/release-name"] == release
            assert annotations["meta.helm.sh/release-namespace"] == namespace
            assert annotations["helm.sh/resource-policy"] == "keep"
            assert crd.metadata.labels["app.kubernetes.io/managed-by"] == "Helm"
            assert crd.metadata.labels["team"] == "settlement"
        manifest = run_helm(
            "get", "manifest", release, "-n", namespace, kubeconfig=control_plane.kubeconfig
        ).stdout
        objects = [d for d in yaml.safe_load_all(manifest) if d]
        assert {"NetworkPolicy", "Deployment", "CustomResourceDefinition"} <= {
            o["kind"] for o in objects
        }
        for obj in objects:  # every object is live, with commonLabels
            ns_args = ["-n", obj["metadata"].get("namespace", namespace)]
            got = control_plane.kubectl(
                "get", obj["kind"], obj["metadata"]["name"], *ns_args, "-o", "json"
            )
            assert json.loads(got.stdout)["metadata"]["labels"]["team"] == "settlement"
        deployment = json.loads(
            control_plane.kubectl(
                "get", "deployment", f"{release}-atoma-operator", "-n", namespace, "-o", "json"
            ).stdout
        )
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["fsGroup"] == 2000
        assert pod["containers"][0]["image"] == "registry.example.com/atoma/operator:1.2.3"


def _can_i(
    control_plane: ControlPlane, kubeconfig: Path, verb: str, resource: str, *args: str
) -> bool:
    result = control_plane.kubectl(
        "auth", "can-i", verb, resource, *args, kubeconfig=kubeconfig, check=False
    )
    answer = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert answer in {"yes", "no"}, result.stderr
    return answer == "yes"


@pytest.fixture
def other_namespace(control_plane: ControlPlane, namespace: str) -> Iterator[str]:
    name = f"{namespace[:50]}-other"
    control_plane.kubectl("create", "namespace", name)
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def crds_present(control_plane: ControlPlane) -> None:
    """can-i resolves resource names through discovery: the CRDs must be served."""
    if not CRD_FILES:
        pytest.skip("crds/ is empty: run `atoma-operator crds`")
    control_plane.apply_crds(CRD_FILES)


@pytest.mark.usefixtures("crds_present")
def test_cluster_scope_service_account_can_do_only_its_job(
    control_plane: ControlPlane, namespace: str, other_namespace: str, tmp_path: Path
) -> None:
    values = {"crds": {"install": False}}
    with _installed(control_plane, namespace, values, tmp_path) as release:
        sa = f"{release}-atoma-operator"
        kc = control_plane.token_kubeconfig(namespace, sa)
        anywhere = ("-n", other_namespace)
        own = ("-n", namespace)
        allowed = [
            *[(v, r, *anywhere) for r in RESOURCES for v in ("get", "list", "watch", "patch")],
            *[
                (v, r, "--subresource=status", *anywhere)
                for r in RESOURCES
                for v in ("patch", "update")
            ],
            ("list", "stacksettlements.atoma.network", "--all-namespaces"),
            ("create", "events", *anywhere),
            ("create", "events.events.k8s.io", *anywhere),
            ("get", "configmaps/proof", *anywhere),
            ("list", "settlementpolicies.atoma.network"),
            ("update", "settlementpolicies.atoma.network/p", "--subresource=status"),
            ("get", f"namespaces/{other_namespace}"),
            ("create", "configmaps", *own),
            ("update", "configmaps/atoma-operator-state", *own),
            ("create", "leases.coordination.k8s.io", *own),
            ("update", "leases.coordination.k8s.io/atoma-operator", *own),
            ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
        ]
        denied = [
            ("get", "secrets/proof", *anywhere),  # readProofSecrets is off by default
            ("get", "secrets/proof", *own),
            ("list", "secrets", "--all-namespaces"),
            ("list", "secrets", *anywhere),
            ("watch", "secrets", *own),
            ("list", "configmaps", *anywhere),  # read by name only
            ("watch", "configmaps", "--all-namespaces"),
            ("update", "settlementpolicies.atoma.network/p"),  # its spec is the admin's
            ("create", "settlementpolicies.atoma.network"),
            ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
            ("update", "customresourcedefinitions.apiextensions.k8s.io"),
            *[(v, r, *anywhere) for r in RESOURCES for v in ("delete", "create", "update")],
            ("delete", "stacksettlements.atoma.network", *own),
            ("update", "configmaps/someone-elses", *own),
            ("update", "configmaps/atoma-operator-state", *anywhere),
            ("update", "leases.coordination.k8s.io/kube-scheduler", "-n", "kube-system"),
            ("create", "pods", *own),
            ("create", "rolebindings.rbac.authorization.k8s.io", *own),
            ("list", "namespaces"),
        ]
        wrong = [a for a in allowed if not _can_i(control_plane, kc, *a)]
        wrong += [d for d in denied if _can_i(control_plane, kc, *d)]
        assert wrong == [], f"RBAC differs from the intent for: {wrong}"


@pytest.mark.usefixtures("crds_present")
def test_namespaced_scope_service_account_is_confined(
    control_plane: ControlPlane, namespace: str, other_namespace: str, tmp_path: Path
) -> None:
    watched = f"{namespace[:50]}-watched"
    control_plane.kubectl("create", "namespace", watched)
    try:
        values = {
            "crds": {"install": False},
            "rbac": {"scope": "namespaced"},
            "watchNamespaces": [watched],
        }
        with _installed(control_plane, namespace, values, tmp_path) as release:
            kc = control_plane.token_kubeconfig(namespace, f"{release}-atoma-operator")
            allowed = [
                *[("watch", r, "-n", watched) for r in RESOURCES],
                *[("update", r, "--subresource=status", "-n", watched) for r in RESOURCES],
                ("get", "configmaps/proof", "-n", watched),
                ("patch", "configmaps/atoma-operator-state", "-n", namespace),
            ]
            denied = [
                *[("list", r, "-n", other_namespace) for r in RESOURCES],
                *[("list", r, "--all-namespaces") for r in RESOURCES],
                ("get", "secrets/proof", "-n", watched),  # Secrets are off by default
                ("get", "secrets/proof", "-n", other_namespace),
                ("list", "configmaps", "-n", watched),
                ("get", "secrets/proof", "-n", namespace),  # own namespace is not watched
                ("list", "secrets", "-n", watched),
                ("get", "customresourcedefinitions.apiextensions.k8s.io"),
                ("delete", "stacksettlements.atoma.network", "-n", watched),
                ("list", "configmaps", "-n", namespace),
            ]
            wrong = [a for a in allowed if not _can_i(control_plane, kc, *a)]
            wrong += [d for d in denied if _can_i(control_plane, kc, *d)]
            assert wrong == [], f"RBAC differs from the intent for: {wrong}"
    finally:
        control_plane.kubectl("delete", "namespace", watched, "--wait=false", check=False)


# -- the daemon-compatible API ---------------------------------------------------------------


def test_api_is_off_by_default_and_renders_its_own_workload_when_enabled() -> None:
    assert not [m for m in render() if m["metadata"]["name"].endswith("-api")]
    manifests = render({"api": {"enabled": True, "namespace": "team-a"}})
    deployments = {d["metadata"]["name"]: d for d in find(manifests, "Deployment")}
    assert len(deployments) == 2
    api = next(d for n, d in deployments.items() if n.endswith("-api"))
    operator = next(d for n, d in deployments.items() if not n.endswith("-api"))
    # Neither Deployment's selector matches the other's pods.
    for owner, other in ((api, operator), (operator, api)):
        selector = owner["spec"]["selector"]["matchLabels"]
        labels = other["spec"]["template"]["metadata"]["labels"]
        assert not selector.items() <= labels.items()
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:1] == ["api"] and "--namespace=team-a" in container["args"]
    assert "ATOMA_KEY_FILE" not in _env(container)  # the API never holds the key
    roles = {r["metadata"]["name"]: r for r in find(manifests, "Role")}
    api_role = next(r for n, r in roles.items() if n.endswith("-api"))
    assert api_role["metadata"]["namespace"] == "team-a"
    assert _rules(api_role) == {
        ("atoma.network", res, verb, "")
        for res in ("stacksettlements", "attestations")
        for verb in ("create", "get")
    }
    (delegator,) = [
        b
        for b in find(manifests, "ClusterRoleBinding")
        if b["roleRef"]["name"] == "system:auth-delegator"
    ]
    assert delegator["subjects"][0]["name"] == api["spec"]["template"]["spec"]["serviceAccountName"]
    services = [s for s in find(manifests, "Service") if s["metadata"]["name"].endswith("-api")]
    assert services[0]["spec"]["ports"][0]["port"] == 3001


def test_claimed_stack_summaries_are_writable_by_name_only() -> None:
    badges = [{"objectId": "0x" + "1" * 64, "nodeSmallId": 7}]
    manifests = render({"atoma": {"badges": badges}})
    state = next(r for r in find(manifests, "Role") if r["metadata"]["name"].endswith("-state"))
    assert ("", "configmaps", "patch", "atoma-claimed-stacks-node-7") in _rules(state)


@pytest.mark.usefixtures("crds_present")
def test_the_service_account_reads_proof_secrets_only_where_allowed(
    control_plane: ControlPlane, namespace: str, other_namespace: str, tmp_path: Path
) -> None:
    """With the chart's own token: a Secret in an allowed namespace is readable, the same
    Secret elsewhere (and any listing) is Forbidden."""
    allowed = f"{namespace[:50]}-proofs"
    control_plane.kubectl("create", "namespace", allowed)
    try:
        for ns in (allowed, other_namespace, namespace):
            control_plane.kubectl(
                "create",
                "secret",
                "generic",
                "proof",
                "-n",
                ns,
                "--from-literal=total=" + "ab" * 32,
            )
        values = {
            "crds": {"install": False},
            "rbac": {"readProofSecrets": True},
            "policy": {"namespaces": [allowed], "allowSecretProofs": True},
        }
        with _installed(control_plane, namespace, values, tmp_path) as release:
            kc = control_plane.token_kubeconfig(namespace, f"{release}-atoma-operator")

            def read(*args: str) -> Any:
                return control_plane.kubectl(*args, kubeconfig=kc, check=False)

            ok = read("get", "secret", "proof", "-n", allowed, "-o", "jsonpath={.data.total}")
            assert ok.returncode == 0, ok.stderr
            assert base64.b64decode(ok.stdout).decode() == "ab" * 32
            for ns in (other_namespace, namespace):
                refused = read("get", "secret", "proof", "-n", ns)
                assert refused.returncode != 0 and "Forbidden" in refused.stderr, ns
            for args in (("-n", allowed), ("--all-namespaces",)):
                listing = read("get", "secrets", *args)
                assert listing.returncode != 0 and "Forbidden" in listing.stderr
            cm = read("get", "configmaps", "-n", allowed)
            assert cm.returncode != 0 and "Forbidden" in cm.stderr  # no ConfigMap listing
    finally:
        control_plane.kubectl("delete", "namespace", allowed, "--wait=false", check=False)


@pytest.mark.usefixtures("crds_present")
def test_the_chart_policy_is_created_and_follows_upgrades(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    values: dict[str, Any] = {"crds": {"install": False}, "policy": {"maxGasPrice": 5000}}
    with _installed(control_plane, namespace, values, tmp_path) as release:
        name = f"{release}-atoma-operator-{namespace}"

        def spec() -> dict[str, Any]:
            out = control_plane.kubectl("get", "settlementpolicy", name, "-o", "json").stdout
            result: dict[str, Any] = json.loads(out)["spec"]
            return result

        assert spec()["namespaces"] == [namespace] and spec()["maxGasPrice"] == 5000
        values["policy"]["maxGasPrice"] = 6000
        run_helm(
            "upgrade", release, str(CHART_DIR), "--namespace", namespace,
            "--values", str(values_file(values, tmp_path)),
            kubeconfig=control_plane.kubeconfig,
        )  # fmt: skip
        assert spec()["maxGasPrice"] == 6000
    control_plane.kubectl("delete", "settlementpolicy", name, "--ignore-not-found")
