"""The chart's usual overrides (cert-manager's and Flux's charts take the same): each lands
where it should, the defaults let the platform pick the uid, names read well for common
release names, and the strict schema still refuses what it does not know.

Rendering only (helm template); the install of these overrides against the real apiserver
is in test_chart.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from atoma_operator.settings import LogLevel, Settings
from helm_support import (
    CHART_DIR,
    USUAL_OVERRIDES,
    Manifest,
    find,
    only,
    render,
    require_helm,
    run_helm,
    schema_refusal,
    template,
    values_file,
)

pytestmark = pytest.mark.integration

OVERRIDES = USUAL_OVERRIDES


@pytest.fixture(scope="module", autouse=True)
def _helm() -> None:
    require_helm()


@pytest.fixture(scope="module")
def overridden() -> list[Manifest]:
    return render(OVERRIDES)


def _deployments(manifests: list[Manifest]) -> tuple[Manifest, Manifest]:
    """(operator, api) Deployments."""
    by_name = {d["metadata"]["name"]: d for d in find(manifests, "Deployment")}
    api = next(d for n, d in by_name.items() if n.endswith("-api"))
    operator = next(d for n, d in by_name.items() if not n.endswith("-api"))
    return operator, api


def _pod(deployment: Manifest) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]  # type: ignore[no-any-return]


# -- every override lands where it should -----------------------------------------------------


def test_image_is_registry_repository_tag(overridden: list[Manifest]) -> None:
    for deployment in _deployments(overridden):
        (container,) = _pod(deployment)["containers"]
        assert container["image"] == "registry.example.com/atoma/operator:1.2.3"
    # registry is optional, a trailing slash is harmless, a digest still wins over the tag
    plain = render({"image": {"repository": "ghcr.io/a/op", "tag": "9"}})
    assert _pod(only(plain, "Deployment"))["containers"][0]["image"] == "ghcr.io/a/op:9"
    digest = "sha256:" + "ab" * 32
    pinned = render({"image": {"registry": "r.example/", "repository": "op", "digest": digest}})
    assert _pod(only(pinned, "Deployment"))["containers"][0]["image"] == f"r.example/op@{digest}"


def test_common_labels_are_on_every_object_and_pod_never_in_selectors(
    overridden: list[Manifest],
) -> None:
    assert {m["kind"] for m in overridden} >= {
        "CustomResourceDefinition", "Deployment", "ServiceAccount", "ClusterRole", "Role",
        "ConfigMap", "Service", "ServiceMonitor", "NetworkPolicy", "SettlementPolicy",
        "ValidatingAdmissionPolicy",
    }  # fmt: skip
    for manifest in overridden:
        labels = manifest["metadata"].get("labels", {})
        assert labels.get("team") == "settlement", (manifest["kind"], manifest["metadata"]["name"])
        assert labels.get("cost-centre") == "c42"
    for deployment in _deployments(overridden):
        assert deployment["spec"]["template"]["metadata"]["labels"]["team"] == "settlement"
        assert "team" not in deployment["spec"]["selector"]["matchLabels"]
    # the chart's own labels cannot be replaced by commonLabels
    clash = render({"commonLabels": {"app.kubernetes.io/name": "other"}})
    deployment = only(clash, "Deployment")
    assert deployment["metadata"]["labels"]["app.kubernetes.io/name"] == "atoma-operator"


def test_pod_labels_and_common_labels_share_a_key() -> None:
    values = {"commonLabels": {"team": "a", "tier": "x"}, "podLabels": {"team": "b", "pod": "p"}}
    labels = only(render(values), "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert (labels["team"], labels["tier"], labels["pod"]) == ("a", "x", "p")


def test_helm_lint_passes_with_every_override(tmp_path: Path) -> None:
    result = run_helm(
        "lint", "--strict", str(CHART_DIR), "--values", str(values_file(OVERRIDES, tmp_path))
    )
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_deployment_annotations_are_on_the_deployments_not_the_pods(
    overridden: list[Manifest],
) -> None:
    for deployment in _deployments(overridden):
        assert deployment["metadata"]["annotations"] == {"reloader.stakater.com/auto": "true"}
        pod_annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        assert "reloader.stakater.com/auto" not in pod_annotations
    assert "annotations" not in only(render(), "Deployment")["metadata"]


def test_security_contexts_merge_into_the_restricted_defaults(
    overridden: list[Manifest],
) -> None:
    for deployment in _deployments(overridden):
        pod = _pod(deployment)
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
            "fsGroup": 2000,
            "runAsUser": 1001,
        }
        (container,) = pod["containers"]
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsGroup": 3000,
        }
    # with an fsGroup the key file is group-readable only
    key = next(v for v in _pod(_deployments(overridden)[0])["volumes"] if "secret" in v)
    assert key["secret"]["defaultMode"] == 0o440


def test_defaults_fix_no_uid_and_keep_the_key_readable() -> None:
    manifests = render({"signingKey": {"existingSecret": "atoma-key"}, "api": {"enabled": True}})
    for deployment in _deployments(manifests):
        pod = _pod(deployment)
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        (container,) = pod["containers"]
        assert not {"runAsUser", "runAsGroup", "fsGroup"} & set(container["securityContext"])
    text = template({"api": {"enabled": True}}).stdout
    assert "runAsUser" not in text and "fsGroup" not in text and "runAsGroup" not in text
    # no fsGroup: the key file belongs to root, so the platform's uid reads it as "other"
    key = next(v for v in _pod(_deployments(manifests)[0])["volumes"] if "secret" in v)
    assert key["secret"]["defaultMode"] == 0o444


def test_operator_pod_extras(overridden: list[Manifest]) -> None:
    operator, api = _deployments(overridden)
    pod = _pod(operator)
    (container,) = pod["containers"]
    assert container["args"] == [
        "run",
        "--liveness=http://0.0.0.0:8081/healthz",
        "--namespace=team-a",
    ]
    assert container["envFrom"] == OVERRIDES["extraEnvFrom"]
    assert {"name": "TZ", "value": "UTC"} in container["env"]
    assert OVERRIDES["extraVolumes"][0] in pod["volumes"]
    assert OVERRIDES["extraVolumeMounts"][0] in container["volumeMounts"]
    assert pod["topologySpreadConstraints"] == OVERRIDES["topologySpreadConstraints"]
    # the operator's extras stay off the API's pod (its own selector, its own command)
    api_pod = _pod(api)
    assert "topologySpreadConstraints" not in api_pod
    assert "envFrom" not in api_pod["containers"][0]
    assert all(v["name"] != "extra-ca" for v in api_pod["volumes"])
    # and nothing of the sort by default
    (default,) = _pod(only(render(), "Deployment"))["containers"]
    assert "envFrom" not in default and len(default["args"]) == 2


def test_service_account_labels(overridden: list[Manifest]) -> None:
    sa = only(overridden, "ServiceAccount", "atoma-operator")
    assert sa["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    api_sa = only(overridden, "ServiceAccount", "atoma-operator-api")
    assert "azure.workload.identity/use" not in api_sa["metadata"]["labels"]


def test_service_monitor_namespace_labels_and_relabelings(overridden: list[Manifest]) -> None:
    monitor = only(overridden, "ServiceMonitor")
    assert monitor["metadata"]["namespace"] == "monitoring"
    assert monitor["metadata"]["labels"]["release"] == "kps"
    # it still scrapes the release namespace's Service
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["atoma-system"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    sm = OVERRIDES["metrics"]["serviceMonitor"]
    assert endpoint["relabelings"] == sm["relabelings"]
    assert endpoint["metricRelabelings"] == sm["metricRelabelings"]
    default = only(render({"metrics": {"serviceMonitor": {"enabled": True}}}), "ServiceMonitor")
    assert default["metadata"]["namespace"] == "atoma-system"
    assert not {"relabelings", "metricRelabelings"} & set(default["spec"]["endpoints"][0])


@pytest.mark.parametrize(
    ("level", "expected"),
    [(None, LogLevel.INFO), ("debug", LogLevel.DEBUG), ("Warning", LogLevel.WARNING)],
)
def test_log_level_reaches_the_settings(
    level: str | None,
    expected: LogLevel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifests = render({"logLevel": level} if level else {})
    text = only(manifests, "ConfigMap")["data"]["settings.yaml"]
    assert json.loads(text)["log_level"] == (level or "INFO")
    config = tmp_path / "settings.yaml"
    config.write_text(text, encoding="utf-8")
    for var in ("ATOMA_KEY_FILE", "ATOMA_SIGNING_KEY", "POD_NAMESPACE", "ATOMA_LOG_LEVEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ATOMA_CONFIG_FILE", str(config))
    assert Settings().log_level is expected


# -- NetworkPolicy ----------------------------------------------------------------------------


def _ports(rule: dict[str, Any]) -> set[tuple[str, int]]:
    return {(p["protocol"], p["port"]) for p in rule["ports"]}


def test_network_policy_is_off_by_default() -> None:
    assert find(render({"api": {"enabled": True}}), "NetworkPolicy") == []


def test_network_policy_allows_metrics_in_and_dns_apiserver_sui_out(
    overridden: list[Manifest],
) -> None:
    policy = only(overridden, "NetworkPolicy", "atoma-operator")
    operator, api = _deployments(overridden)
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["podSelector"]["matchLabels"] == operator["spec"]["selector"]["matchLabels"]
    (ingress,) = spec["ingress"]
    assert _ports(ingress) == {("TCP", 8080)} and "from" not in ingress
    dns, apiserver, sui = spec["egress"]  # no state database configured
    assert _ports(dns) == {("UDP", 53), ("TCP", 53)}
    assert _ports(apiserver) == {("TCP", 443), ("TCP", 6443)}
    assert _ports(sui) == {("TCP", 443)}  # https:// without a port
    assert all("to" not in rule for rule in spec["egress"])
    api_policy = only(overridden, "NetworkPolicy", "atoma-operator-api")
    assert (
        api_policy["spec"]["podSelector"]["matchLabels"] == api["spec"]["selector"]["matchLabels"]
    )
    (api_in,) = api_policy["spec"]["ingress"]
    assert _ports(api_in) == {("TCP", 3001)}
    assert [_ports(r) for r in api_policy["spec"]["egress"]] == [_ports(dns), _ports(apiserver)]


def test_network_policy_peers_ports_and_extra_rules() -> None:
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mon"}}}
    extra_in = {"from": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": 8081}]}
    extra_out = {"to": [{"ipBlock": {"cidr": "10.9.0.0/16"}}], "ports": [{"port": 4317}]}
    values = {
        "sui": {"rpcUrl": "http://sui-node.sui:9000"},
        "stateDatabase": {"existingSecret": "db"},
        "networkPolicy": {
            "enabled": True,
            "metricsFrom": [monitoring],
            "apiServer": {"cidrs": ["10.0.0.1/32"], "ports": [6443]},
            "sui": {"cidrs": ["192.0.2.0/24"]},
            "stateDatabase": {"cidrs": ["10.1.0.0/16"], "port": 6432},
            "ingress": [extra_in],
            "egress": [extra_out],
        },
    }
    spec = only(render(values), "NetworkPolicy")["spec"]
    metrics, extra = spec["ingress"]
    assert metrics["from"] == [monitoring] and extra == extra_in
    _dns, apiserver, sui, database, added = spec["egress"]
    assert apiserver["to"] == [{"ipBlock": {"cidr": "10.0.0.1/32"}}]
    assert _ports(apiserver) == {("TCP", 6443)}
    assert sui["to"] == [{"ipBlock": {"cidr": "192.0.2.0/24"}}]
    assert _ports(sui) == {("TCP", 9000)}  # the port of sui.rpcUrl
    assert database["to"] == [{"ipBlock": {"cidr": "10.1.0.0/16"}}]
    assert _ports(database) == {("TCP", 6432)}
    assert added == extra_out
    # an explicit port wins; http:// without one is 80
    plain = {"sui": {"rpcUrl": "http://sui-node"}, "networkPolicy": {"enabled": True}}
    assert _ports(only(render(plain), "NetworkPolicy")["spec"]["egress"][2]) == {("TCP", 80)}
    plain["networkPolicy"]["sui"] = {"port": 8443}
    assert _ports(only(render(plain), "NetworkPolicy")["spec"]["egress"][2]) == {("TCP", 8443)}


# -- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("release", "values", "expected"),
    [
        ("atoma", {}, "atoma-operator"),
        ("atoma-operator", {}, "atoma-operator"),
        ("prod", {}, "prod-atoma-operator"),
        ("prod-atoma-operator", {}, "prod-atoma-operator"),
        ("atoma", {"fullnameOverride": "settler"}, "settler"),
        ("atoma", {"nameOverride": "settle"}, "atoma-settle"),
        ("prod", {"nameOverride": "settle"}, "prod-settle"),
    ],
)
def test_object_names_read_well(release: str, values: dict[str, Any], expected: str) -> None:
    manifests = render(values, release=release)
    assert only(manifests, "Deployment")["metadata"]["name"] == expected
    assert only(manifests, "ServiceAccount")["metadata"]["name"] == expected
    assert only(manifests, "ConfigMap")["metadata"]["name"] == f"{expected}-settings"
    assert only(manifests, "Service")["metadata"]["name"] == f"{expected}-metrics"
    # the instance label keeps the release name
    labels = only(manifests, "Deployment")["spec"]["selector"]["matchLabels"]
    assert labels["app.kubernetes.io/instance"] == release


# -- the schema stays strict -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"podSecurityContex": {}}, "podSecurityContex"),
        ({"networkPolicy": {"enable": True}}, "enable"),
        ({"networkPolicy": {"sui": {"host": "x"}}}, "host"),
        (
            {"networkPolicy": {"apiServer": {"cidrs": ["10.0.0.1"]}}},
            "/networkPolicy/apiServer/cidrs/0",
        ),
        ({"image": {"registy": "ghcr.io"}}, "registy"),
        ({"metrics": {"serviceMonitor": {"relabeling": []}}}, "relabeling"),
        ({"serviceAccount": {"label": {}}}, "label"),
        ({"logLevel": "verbose"}, "/logLevel"),
        ({"extraArgs": "--x"}, "/extraArgs"),
        ({"extraEnvFrom": [{"secret": {"name": "x"}}]}, "secret"),
        ({"extraVolumes": [{"name": "tmp", "emptyDir": {}}]}, "/extraVolumes/0/name"),
        ({"commonLabels": {"team": 5}}, "/commonLabels/team"),
        ({"deploymentAnnotations": {"a": True}}, "/deploymentAnnotations/a"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_schema_refuses_unknown_or_malformed_overrides(values: dict[str, Any], field: str) -> None:
    stderr = schema_refusal(values)
    assert field in stderr, stderr


def test_every_new_value_is_documented() -> None:
    """values.yaml comments and the chart README mention every override this file sets."""
    chart = Path(__file__).resolve().parents[2] / "charts" / "atoma-operator"
    readme = (chart / "README.md").read_text()
    values_text = (chart / "values.yaml").read_text()
    defaults = yaml.safe_load(values_text)
    for key in (
        "podSecurityContext", "securityContext", "topologySpreadConstraints", "extraVolumes",
        "extraVolumeMounts", "extraArgs", "extraEnv", "extraEnvFrom", "deploymentAnnotations",
        "commonLabels", "networkPolicy", "logLevel",
    ):  # fmt: skip
        assert key in defaults, key
        assert f"`{key}" in readme, key
    for dotted in (
        "serviceAccount.labels", "image.registry", "metrics.serviceMonitor.relabelings",
        "metrics.serviceMonitor.metricRelabelings", "metrics.serviceMonitor.namespace",
    ):  # fmt: skip
        node: Any = defaults
        for part in dotted.split("."):
            node = node[part]
        assert f"`{dotted}`" in readme, dotted
