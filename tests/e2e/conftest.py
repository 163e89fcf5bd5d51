"""Fixtures for whole flows: CRDs on the real control plane, a stand-in, the operator.

The operator runs in-process through kopf.testing.KopfRunner against the real
apiserver, talking gRPC to a stand-in subprocess; settings come from the environment,
exactly as in a pod.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from e2e_support import Localnet
from kopf.testing import KopfRunner

from atoma_dev.controlplane import ControlPlane

REPO = Path(__file__).resolve().parents[2]
OPERATOR_ARGS = ["run", "-A", "--standalone", "-m", "atoma_operator.handlers"]


@pytest.fixture(scope="session")
def crds(control_plane: ControlPlane) -> ControlPlane:
    control_plane.apply_crds(sorted((REPO / "crds").glob("*.yaml")))
    return control_plane


@pytest.fixture
def localnet(tmp_path: Path) -> Iterator[Localnet]:
    node = Localnet(tmp_path / "localnet", seed=secrets.randbelow(2**31))
    node.proc.workdir.mkdir(parents=True, exist_ok=True)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def operator_env(
    crds: ControlPlane, localnet: Localnet, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    env = localnet.operator_env(namespace=namespace)
    env["KUBECONFIG"] = str(crds.kubeconfig)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def run_operator(operator_env: dict[str, str]) -> Callable[[], KopfRunner]:
    """A factory: `with run_operator(): ...` runs the operator for the block."""

    @contextmanager
    def _run() -> Iterator[KopfRunner]:
        with KopfRunner(OPERATOR_ARGS, timeout=60) as runner:
            yield runner

    return _run  # type: ignore[return-value]
