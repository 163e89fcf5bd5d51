"""The atoma-dev CLI dispatcher and the build-script lookup (no binaries needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from atoma_dev.__main__ import build_parser
from atoma_dev.binaries import BUILD_SCRIPT_ENV, BinaryBuildError, binary_paths, build_script


@pytest.mark.parametrize("command", ["up", "down", "status"])
def test_control_plane_commands_take_a_state_dir(command: str) -> None:
    args = build_parser().parse_args(["control-plane", command, "--state-dir", "/x"])
    assert args.state_dir == Path("/x")
    assert callable(args.handler)


def test_a_group_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([])
    assert exited.value.code == 2
    assert "required: GROUP" in capsys.readouterr().err


def test_binary_paths_come_from_the_build_script_and_are_versioned() -> None:
    assert build_script().name == "build-control-plane.sh"
    paths = binary_paths()
    assert paths.etcd.name == "etcd"
    assert paths.etcd.parent.name.startswith("etcd-v3.")
    assert paths.kube_apiserver.parent.name.startswith("kube-apiserver-v1.")
    assert paths.helm.parent.name.startswith("helm-v3.")
    assert paths.promtool.parent.name.startswith("promtool-v0.3")  # Prometheus 3.x modules


def test_a_wrong_script_override_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BUILD_SCRIPT_ENV, "/nonexistent/build.sh")
    with pytest.raises(BinaryBuildError, match="not a file"):
        build_script()
