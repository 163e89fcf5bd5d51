"""The real control plane: version, RBAC, admin rights, CRDs, and clean shutdown."""

from __future__ import annotations

import os
import signal
import textwrap
from pathlib import Path

import pytest
from kubernetes import client

from atoma_dev.__main__ import main as atoma_dev_main
from atoma_dev.binaries import Binaries, binary_paths
from atoma_dev.controlplane import ControlPlane, KubectlError
from atoma_dev.pki import ADMIN_GROUP
from atoma_dev.process import is_running, wait_until

pytestmark = pytest.mark.integration


def _built_version() -> str:
    # The cache directory is keyed by the version the build script was asked for.
    return binary_paths().kube_apiserver.parent.name.removeprefix("kube-apiserver-")


def test_version_is_the_built_release(kube_api: client.ApiClient) -> None:
    expected = _built_version()
    info = client.VersionApi(kube_api).get_code()
    assert info.git_version == expected
    assert (info.major, info.minor) == tuple(expected.removeprefix("v").split(".")[:2])


def test_admin_is_system_masters_and_creates_namespaces(
    control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str
) -> None:
    whoami = control_plane.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.groups}")
    assert ADMIN_GROUP in whoami.stdout
    fetched = client.CoreV1Api(kube_api).read_namespace(namespace)
    assert fetched.metadata is not None
    assert fetched.status is not None
    assert fetched.metadata.name == namespace
    assert fetched.status.phase == "Active"


def test_rbac_denies_a_bare_service_account_until_bound(
    control_plane: ControlPlane, namespace: str
) -> None:
    control_plane.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    token_config = control_plane.token_kubeconfig(namespace, "reader")
    assert token_config.stat().st_mode & 0o077 == 0

    whoami = control_plane.kubectl(
        "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", kubeconfig=token_config
    )
    assert whoami.stdout == f"system:serviceaccount:{namespace}:reader"

    def list_secrets(ns: str) -> KubectlError | None:
        try:
            control_plane.kubectl("get", "secrets", "-n", ns, kubeconfig=token_config)
        except KubectlError as denied:
            return denied
        return None

    denied = list_secrets(namespace)
    assert denied is not None
    assert "forbidden" in denied.stderr

    control_plane.kubectl(
        "create", "role", "secret-reader", "--verb=get,list", "--resource=secrets", "-n", namespace
    )
    control_plane.kubectl(
        "create", "rolebinding", "reader", "--role=secret-reader",
        f"--serviceaccount={namespace}:reader", "-n", namespace,
    )  # fmt: skip
    # The RBAC authorizer reads bindings from an informer cache: allow it to catch up.
    wait_until(
        lambda: True if list_secrets(namespace) is None else None,
        timeout=15,
        what="the RoleBinding to take effect",
    )
    other = list_secrets("default")
    assert other is not None, "a namespaced RoleBinding must not grant other namespaces"
    assert "forbidden" in other.stderr


def test_apply_crds_waits_until_established(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    manifest = tmp_path / "widgets.yaml"
    manifest.write_text(
        textwrap.dedent(
            """\
            apiVersion: apiextensions.k8s.io/v1
            kind: CustomResourceDefinition
            metadata: {name: widgets.test.atoma.dev}
            spec:
              group: test.atoma.dev
              scope: Namespaced
              names: {plural: widgets, singular: widget, kind: Widget}
              versions:
                - name: v1
                  served: true
                  storage: true
                  schema:
                    openAPIV3Schema:
                      type: object
                      properties:
                        spec: {type: object, properties: {size: {type: integer}}}
            """
        )
    )
    applied = control_plane.apply_crds([manifest])
    assert applied == ["customresourcedefinition.apiextensions.k8s.io/widgets.test.atoma.dev"]
    # Creating an instance right away only works if the CRD is already served.
    control_plane.kubectl(
        "apply", "-n", namespace, "-f", "-",
        input="apiVersion: test.atoma.dev/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 3}\n",
    )  # fmt: skip
    size = control_plane.kubectl(
        "get", "widget", "w", "-n", namespace, "-o", "jsonpath={.spec.size}"
    )
    assert size.stdout == "3"


def test_stop_leaves_no_process_and_no_files(
    control_plane: ControlPlane, control_plane_binaries: Binaries
) -> None:
    binaries = control_plane_binaries
    second = ControlPlane(binaries=binaries).start()
    try:
        assert second.server != control_plane.server
        assert second.kubectl("get", "namespace", "default", "-o", "name").stdout.strip() == (
            "namespace/default"
        )
        started = {
            second.pids["etcd"]: binaries.etcd,
            second.pids["kube-apiserver"]: binaries.kube_apiserver,
        }
        assert all(is_running(pid, exe) for pid, exe in started.items())
        work_dir = second.work_dir
    finally:
        second.stop()
    assert not any(is_running(pid, exe) for pid, exe in started.items())
    assert not work_dir.exists()
    assert control_plane.is_running(), "stopping one instance must not touch another"


def test_stop_after_a_crash_keeps_only_the_logs(control_plane_binaries: Binaries) -> None:
    plane = ControlPlane(binaries=control_plane_binaries).start()
    apiserver = plane.pids["kube-apiserver"]
    try:
        os.kill(apiserver, signal.SIGKILL)
        wait_until(lambda: True if not plane.is_running() else None, timeout=10, what="crash")
    finally:
        plane.stop()
    assert sorted(p.name for p in plane.work_dir.iterdir()) == ["logs"]
    assert (plane.log_dir / "kube-apiserver.log").stat().st_size > 0
    for log in plane.log_dir.iterdir():
        log.unlink()
    plane.log_dir.rmdir()
    plane.work_dir.rmdir()


def test_cli_up_is_detached_and_down_stops_it(
    control_plane_binaries: Binaries, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = ["--state-dir", str(tmp_path / "state")]
    assert atoma_dev_main(["control-plane", "up", *state]) == 0
    export = capsys.readouterr().out.strip()
    assert export.startswith("export KUBECONFIG=")
    plane = ControlPlane.attach(tmp_path / "state" / "control-plane")
    try:
        kubeconfig = Path(export.removeprefix("export KUBECONFIG="))
        assert kubeconfig == plane.kubeconfig
        assert plane.kubectl("get", "ns", "default", "-o", "name").stdout.strip() == (
            "namespace/default"
        )
        # Detached: its own session, so a terminal's Ctrl-C does not reach it.
        assert os.getsid(plane.pids["kube-apiserver"]) != os.getsid(0)
        assert atoma_dev_main(["control-plane", "status", *state]) == 0
    finally:
        assert atoma_dev_main(["control-plane", "down", *state]) == 0
    assert not plane.is_running()
    assert atoma_dev_main(["control-plane", "status", *state]) == 3
    assert not (tmp_path / "state" / "control-plane").exists()
