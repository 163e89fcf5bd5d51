"""Fault tests: the operator as a real process (kill -9, two replicas) on the e2e fixtures.

The control plane, CRDs and stand-in fixtures are tests/e2e's own (loaded from its
conftest, so there is one definition); what is added here is the operator process
and the bulk helpers that hundreds of resources need.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

E2E = Path(__file__).resolve().parents[1] / "e2e"
if str(E2E) not in sys.path:
    sys.path.insert(0, str(E2E))


def _load_e2e_conftest() -> object:
    spec = importlib.util.spec_from_file_location("e2e_conftest_for_faults", E2E / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_e2e = _load_e2e_conftest()
crds = _e2e.crds  # type: ignore[attr-defined]
localnet = _e2e.localnet  # type: ignore[attr-defined]

from e2e_support import Localnet  # noqa: E402
from fault_support import Fleet  # noqa: E402

from atoma_dev.controlplane import ControlPlane  # noqa: E402


@pytest.fixture
def fleet(
    crds: ControlPlane,
    localnet: Localnet,
    namespace: str,
    kube_api: client.ApiClient,
    tmp_path: Path,
) -> Iterator[Fleet]:
    """Resources, stacks and operator replicas for one test; every replica stopped after."""
    made = Fleet(crds, localnet, namespace, kube_api, tmp_path)
    try:
        yield made
    finally:
        made.stop_all()


__all__ = ["crds", "fleet", "localnet"]
