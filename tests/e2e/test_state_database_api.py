"""Whole flows with proofs from the node's state database (a real PostgreSQL) and the
daemon's HTTP API: a seed-style POST with stack ids only gets its digests from a real
operator run; an unreachable database signs nothing and says why."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from e2e_support import PROOF_HEX, Localnet, apply, condition, get, wait_until
from kubernetes import client

from atoma_dev.controlplane import ControlPlane
from atoma_dev.postgres import Postgres
from atoma_operator.api.kube_backend import KubeBackend
from atoma_operator.api.server import ApiConfig, build_app

pytestmark = pytest.mark.e2e


def _seed_rows(db: Postgres, stacks: list[int], node: int) -> None:
    """Each stack's row, then its requests appended one at a time, as the node does."""
    for sid in stacks:
        db.psql(
            "INSERT INTO stacks VALUES "
            f"({sid}, '0xowner', 'stack-{sid}', 1, {node}, 1000, 1, 0, false, ''::bytea, 0) "
            "ON CONFLICT (stack_small_id) DO UPDATE SET total_hash = ''::bytea"
        )
        for i in range(0, len(PROOF_HEX), 64):
            db.psql(
                f"UPDATE stacks SET total_hash = total_hash || '\\x{PROOF_HEX[i : i + 64]}'::bytea,"
                f" num_total_messages = num_total_messages + 1 WHERE stack_small_id = {sid}"
            )


def _caller_token(cp: ControlPlane, ns: str) -> str:
    cp.kubectl("create", "serviceaccount", "settler", "-n", ns)
    cp.kubectl(
        "create", "role", "settler", "-n", ns,
        "--verb=create,get,list", "--resource=stacksettlements.atoma.network",
    )  # fmt: skip
    cp.kubectl(
        "create", "rolebinding", "settler", "-n", ns, "--role=settler",
        f"--serviceaccount={ns}:settler",
    )  # fmt: skip
    return cp.kubectl("create", "token", "settler", "-n", ns).stdout.strip()


async def test_seed_request_with_stack_ids_only_gets_the_digests(
    crds: ControlPlane,
    localnet: Localnet,
    namespace: str,
    run_operator: Any,
    operator_env: dict[str, str],
    state_database: Postgres,
    kube_api: client.ApiClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stacks = localnet.dev["stacks"][:2]
    node = int(localnet.dev["badges"][0]["node_small_id"])
    _seed_rows(state_database, stacks, node)
    monkeypatch.setenv("ATOMA_STATE_DATABASE_DSN", state_database.reader_dsn)
    monkeypatch.setenv("ATOMA_STATE_DATABASE_SSLMODE", "disable")
    token = _caller_token(crds, namespace)
    config = ApiConfig(
        namespace=namespace,
        operator_namespace=namespace,
        badges=frozenset({node}),
        wait_seconds=90,
        poll_seconds=0.2,
    )
    body = {"stack_small_ids": stacks, "num_claimed_compute_units": 10, "node_small_id": node}
    with run_operator():
        async with TestClient(TestServer(build_app(KubeBackend(kube_api), config))) as http:
            resp = await http.post(
                "/try_settle_stack_ids",
                data=json.dumps(body),
                headers={"Authorization": f"Bearer {token}"},
            )
            answer = await resp.json()
    assert resp.status == 200, answer
    digests = answer["tx_digests"]
    assert len(digests) == 2
    (stl,) = json.loads(crds.kubectl("get", "stl", "-n", namespace, "-o", "json").stdout)["items"]
    assert stl["spec"]["proofSource"] == "StateDatabase" and "proofs" not in stl["spec"]
    assert stl["status"]["txDigests"] == digests  # stack order
    assert [s["stackSmallId"] for s in stl["status"]["stacks"]] == stacks
    for digest in digests:
        assert localnet.executions(digest) == 1


def test_unreachable_state_database_signs_nothing(
    crds: ControlPlane,
    localnet: Localnet,
    namespace: str,
    run_operator: Any,
    operator_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ATOMA_STATE_DATABASE_DSN", "postgresql://r:pw@127.0.0.1:1/atoma_state")
    monkeypatch.setenv("ATOMA_STATE_DATABASE_SSLMODE", "disable")
    stacks = localnet.dev["stacks"][:1]
    manifest = {
        "apiVersion": "atoma.network/v1alpha1",
        "kind": "StackSettlement",
        "metadata": {"name": "db-down", "namespace": namespace},
        "spec": {
            "stackSmallIds": stacks,
            "numClaimedComputeUnits": 10,
            "proofSource": "StateDatabase",
        },
    }
    before = dict(localnet.counters().get("executions", {}))
    with run_operator():
        apply(crds, manifest)

        def waiting() -> dict[str, Any] | None:
            cond = condition(get(crds, "stl", namespace, "db-down"), "Reconciling")
            ok = cond and cond["status"] == "True" and cond["reason"] == "StateDatabaseUnavailable"
            return cond if ok else None

        cond = wait_until(waiting, timeout=60, what="Reconciling/StateDatabaseUnavailable")
    assert "state database unavailable" in cond["message"]
    assert "pw@" not in cond["message"]  # the DSN's password never appears
    assert localnet.counters().get("executions", {}) == before
