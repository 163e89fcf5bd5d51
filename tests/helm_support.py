"""Helpers for tests of the Helm chart: find helm, render the chart, run helm commands.

helm is built from the Go module proxy by ``hack/build-control-plane.sh helm`` (cached
per version); ``ATOMA_HELM=/path/to/helm`` overrides it with any helm v3 binary.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from atoma_dev.binaries import BinaryBuildError, ensure_binaries

REPO_ROOT = Path(__file__).resolve().parents[1]
CHART_DIR = REPO_ROOT / "charts" / "atoma-operator"
HELM_ENV = "ATOMA_HELM"

Manifest = dict[str, Any]

SCHEMA_REFUSED = "values don't meet the specifications of the schema"

USUAL_OVERRIDES: dict[str, Any] = {
    "image": {"registry": "registry.example.com/atoma", "repository": "operator", "tag": "1.2.3"},
    "commonLabels": {"team": "settlement", "cost-centre": "c42"},
    "deploymentAnnotations": {"reloader.stakater.com/auto": "true"},
    "podSecurityContext": {"fsGroup": 2000, "runAsUser": 1001},
    "securityContext": {"runAsGroup": 3000},
    "topologySpreadConstraints": [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "atoma-operator"}},
        }
    ],
    "extraVolumes": [{"name": "extra-ca", "configMap": {"name": "corp-ca", "optional": True}}],
    "extraVolumeMounts": [{"name": "extra-ca", "mountPath": "/etc/corp-ca", "readOnly": True}],
    "extraArgs": ["--namespace=team-a"],
    "extraEnv": [{"name": "TZ", "value": "UTC"}],
    "extraEnvFrom": [
        {"secretRef": {"name": "atoma-extra", "optional": True}},
        {"configMapRef": {"name": "cm", "optional": True}},
    ],
    "serviceAccount": {"labels": {"azure.workload.identity/use": "true"}},
    "logLevel": "debug",
    "signingKey": {"existingSecret": "atoma-key"},
    "metrics": {
        "serviceMonitor": {
            "enabled": True,
            "namespace": "monitoring",
            "labels": {"release": "kps"},
            "relabelings": [{"action": "replace", "targetLabel": "cluster", "replacement": "c1"}],
            "metricRelabelings": [
                {"action": "drop", "sourceLabels": ["__name__"], "regex": "go_.*"}
            ],
        }
    },
    "networkPolicy": {"enabled": True},
    "api": {"enabled": True},
}
"""The overrides users bring from cert-manager's and Flux's charts, each set once."""


class HelmUnavailable(RuntimeError):
    """No helm binary: neither $ATOMA_HELM nor the build script's cache provides one."""


@cache
def helm_binary() -> Path:
    """The helm binary: ``$ATOMA_HELM`` if set, else the build script's (built if missing)."""
    override = os.environ.get(HELM_ENV)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise HelmUnavailable(f"{HELM_ENV}={override} is not an executable file")
        return path
    try:
        return ensure_binaries(("helm",)).helm
    except BinaryBuildError as exc:
        raise HelmUnavailable(f"helm unavailable ({exc}); set {HELM_ENV}") from exc


def require_helm() -> None:
    """Skip the calling test when there is no helm (module fixtures call this)."""
    try:
        helm_binary()
    except HelmUnavailable as exc:
        pytest.skip(str(exc))


@cache
def _helm_home() -> Path:
    # Keep helm's cache/config/data out of the developer's home and shared between calls.
    return Path(tempfile.mkdtemp(prefix="atoma-helm-home-"))


def run_helm(
    *args: str,
    kubeconfig: Path | None = None,
    check: bool = True,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """Run helm with an isolated home; ``check`` raises with helm's stderr on failure."""
    home = _helm_home()
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    cmd = [str(helm_binary()), *args]
    if kubeconfig is not None:
        cmd += ["--kubeconfig", str(kubeconfig)]
    result = subprocess.run(
        cmd, capture_output=True, text=True, env=env, check=False, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr}")
    return result


def values_file(values: Mapping[str, Any], directory: Path) -> Path:
    """Write ``values`` to a fresh YAML file under ``directory``."""
    fd, name = tempfile.mkstemp(prefix="values-", suffix=".yaml", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(dict(values), handle)
    return Path(name)


def template(
    values: Mapping[str, Any] | None = None,
    *,
    release: str = "atoma",
    namespace: str = "atoma-system",
    extra_args: Sequence[str] = (),
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """``helm template`` of the chart with ``values`` (written to a temporary file)."""
    with tempfile.TemporaryDirectory(prefix="atoma-chart-") as tmp:
        args = ["template", release, str(CHART_DIR), "--namespace", namespace]
        if values:
            args += ["--values", str(values_file(values, Path(tmp)))]
        return run_helm(*args, *extra_args, check=check)


def schema_refusal(values: Mapping[str, Any]) -> str:
    """helm's stderr for ``values`` the schema refuses (fails if the render succeeds)."""
    result = template(values, check=False)
    assert result.returncode != 0, "the schema accepted the values"
    assert SCHEMA_REFUSED in result.stderr, result.stderr
    return result.stderr


def render(
    values: Mapping[str, Any] | None = None,
    *,
    release: str = "atoma",
    namespace: str = "atoma-system",
    extra_args: Sequence[str] = (),
) -> list[Manifest]:
    """The chart's rendered objects (empty documents dropped)."""
    out = template(values, release=release, namespace=namespace, extra_args=extra_args).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def find(manifests: Sequence[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    """Objects of ``kind`` (and ``name``, if given)."""
    return [
        m
        for m in manifests
        if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)
    ]


def only(manifests: Sequence[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The single object of ``kind`` (and ``name``); fails if there are none or several."""
    found = find(manifests, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]
