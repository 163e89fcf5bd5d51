"""`atoma-operator api` against the real apiserver, with the seeds' own request examples:
TokenReview + SubjectAccessReview, a resource per request (a retry creates nothing),
digests in stack order, 202 on timeout, 400 on bad input, claimed stacks in the seed's
shape."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from kubernetes import client

from atoma_dev.controlplane import ControlPlane
from atoma_operator.api.kube_backend import KubeBackend
from atoma_operator.api.server import ApiConfig, build_app
from atoma_operator.atoma.events import StackTrySettleEvent
from atoma_operator.claimed import ClaimedStacks, kube_writer
from atoma_operator.kube import Kube
from atoma_operator.resources.common import GROUP, VERSION

pytestmark = pytest.mark.integration

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"
# Seed 001's request bodies, verbatim.
SEED_SETTLE = {
    "stack_small_ids": [123, 456],
    "num_claimed_compute_units": 50,
    "node_small_id": 789,
    "gas": "0x789",
    "gas_budget": 10_000,  # the seed's 1000 is under Sui's minimum of 1000 x price
    "gas_price": 10,
}
SEED_ATTEST = {
    "stack_small_ids": [123, 456],
    "node_small_id": 789,
    "gas": "0x789",
    "gas_budget": 10_000,  # the seed's 1000 is under Sui's minimum of 1000 x price
    "gas_price": 10,
}
SEED_CLAIMED_KEYS = {
    "stack_small_id", "stack_id", "selected_node_id", "num_claimed_compute_units",
    "settlement_time", "attestation_status", "requested_attestation_nodes",
    "received_attestations", "required_attestations", "settlement_complete",
}  # fmt: skip
DIGESTS = [
    "4BHEgDq5NCPqCgGUpxHMTiaXNB6mGH3NgvtNqB4ZVhyq",
    "9uZJb1zU9PHSBVBAPGznmbY5vMrjhi1hZpVV4YX3S4UJ",
]


def _rbac(plane: ControlPlane, ns: str) -> dict[str, str]:
    """Two callers: `settler` may create and list the resources, `stranger` nothing."""
    manifests = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": n, "namespace": ns}}
        for n in ("settler", "stranger")
    ] + [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "settler", "namespace": ns},
            "rules": [
                {
                    "apiGroups": [GROUP],
                    "resources": ["stacksettlements", "attestations"],
                    "verbs": ["create", "get", "list"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "settler", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "settler"},
            "subjects": [{"kind": "ServiceAccount", "name": "settler", "namespace": ns}],
        },
    ]
    plane.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps({"kind": "List", "apiVersion": "v1", "items": manifests}),
    )
    return {
        n: plane.kubectl("create", "token", n, "-n", ns).stdout.strip()
        for n in ("settler", "stranger")
    }


@pytest.fixture
def api(
    control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str
) -> tuple[web.Application, dict[str, str]]:
    control_plane.apply_crds([CRD_DIR])
    tokens = _rbac(control_plane, namespace)
    config = ApiConfig(
        namespace=namespace,
        operator_namespace=namespace,
        badges=frozenset({789}),
        wait_seconds=1.0,
        poll_seconds=0.1,
    )
    return build_app(KubeBackend(kube_api), config), tokens


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[TestClient[Any, Any]]:
    """The app on a loopback port, in the test's own event loop."""
    async with TestClient(TestServer(app)) as http:
        yield http


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _resources(kube_api: client.ApiClient, ns: str, plural: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
        GROUP, VERSION, ns, plural
    )["items"]
    return items


async def test_seed_settle_request_creates_one_resource_and_answers_digests(
    api: tuple[web.Application, dict[str, str]], kube_api: client.ApiClient, namespace: str
) -> None:
    app, tokens = api
    async with serving(app) as http:
        first = await http.post(
            "/try_settle_stack_ids", json=SEED_SETTLE, headers=_auth(tokens["settler"])
        )
        assert first.status == 202, await first.text()
        accepted = await first.json()
        name = accepted["name"]
        retry = await http.post(
            "/try_settle_stack_ids", json=SEED_SETTLE, headers=_auth(tokens["settler"])
        )
        assert retry.status == 202 and (await retry.json())["name"] == name
        (stl,) = _resources(kube_api, namespace, "stacksettlements")  # the retry created nothing
        assert stl["metadata"]["name"] == name
        assert stl["spec"] == {
            "stackSmallIds": [123, 456],
            "numClaimedComputeUnits": 50,
            "nodeSmallId": 789,
            "gas": "0x" + "0" * 61 + "789",
            "gasBudget": 10_000,
            "gasPrice": 10,
            "proofSource": "StateDatabase",
        }
        # The operator records the digests (here written directly): the POST answers them.
        client.CustomObjectsApi(kube_api).patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, "stacksettlements", name, {"status": {"txDigests": DIGESTS}}
        )
        done = await http.post(
            "/try_settle_stack_ids", json=SEED_SETTLE, headers=_auth(tokens["settler"])
        )
        assert done.status == 200
        assert await done.json() == {"tx_digests": DIGESTS}


async def test_seed_attestation_request_creates_an_attestation(
    api: tuple[web.Application, dict[str, str]], kube_api: client.ApiClient, namespace: str
) -> None:
    app, tokens = api
    async with serving(app) as http:
        resp = await http.post(
            "/submit_stack_settlement_attestations",
            json=SEED_ATTEST,
            headers=_auth(tokens["settler"]),
        )
        assert resp.status == 202, await resp.text()
        (atst,) = _resources(kube_api, namespace, "attestations")
        assert atst["spec"]["stackSmallIds"] == [123, 456] and atst["spec"]["nodeSmallId"] == 789


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (json.dumps({**SEED_SETTLE, "node_small_id": 999}).encode(), "node 999"),
        (json.dumps({**SEED_SETTLE, "stack_small_ids": []}).encode(), "stack_small_ids"),
        (json.dumps({**SEED_SETTLE, "gas": "coin"}).encode(), "gas"),
    ],
    ids=["bad-json", "unknown-node", "no-stacks", "bad-gas"],
)
async def test_bad_requests_are_400_with_a_message(
    api: tuple[web.Application, dict[str, str]],
    kube_api: client.ApiClient,
    namespace: str,
    body: bytes,
    message: str,
) -> None:
    app, tokens = api
    async with serving(app) as http:
        resp = await http.post("/try_settle_stack_ids", data=body, headers=_auth(tokens["settler"]))
        assert resp.status == 400
        assert message in (await resp.json())["error"]
        assert _resources(kube_api, namespace, "stacksettlements") == []


async def test_callers_are_authenticated_and_authorised(
    api: tuple[web.Application, dict[str, str]], kube_api: client.ApiClient, namespace: str
) -> None:
    app, tokens = api
    async with serving(app) as http:
        assert (await http.post("/try_settle_stack_ids", json=SEED_SETTLE)).status == 401
        bad = await http.post(
            "/try_settle_stack_ids", json=SEED_SETTLE, headers=_auth("not-a-token")
        )
        assert bad.status == 401
        stranger = await http.post(
            "/try_settle_stack_ids", json=SEED_SETTLE, headers=_auth(tokens["stranger"])
        )
        assert stranger.status == 403
        assert "may not create stacksettlements" in (await stranger.json())["error"]
        assert (await http.get("/claimed_stacks", headers=_auth(tokens["stranger"]))).status == 403
        assert _resources(kube_api, namespace, "stacksettlements") == []
        assert (await http.get("/health")).status == 200
        doc = await (await http.get("/openapi.json")).json()
        assert {
            "/try_settle_stack_ids",
            "/submit_stack_settlement_attestations",
            "/claimed_stacks",
            "/claimed_stacks/{id}",
            "/health",
        } <= set(doc["paths"])


async def test_claimed_stacks_in_the_seed_shape(
    api: tuple[web.Application, dict[str, str]], kube_api: client.ApiClient, namespace: str
) -> None:
    app, tokens = api
    async with serving(app) as http:
        view = ClaimedStacks([789, 790])
        at = datetime(2024, 3, 21, 12, 0, tzinfo=UTC)
        leaf = b"\x00" * 32
        view.observe(StackTrySettleEvent("d", 0, 1, 789, (456, 790), leaf, leaf, 1000), at=at)
        view.observe(StackTrySettleEvent("d", 1, 2, 790, (456,), leaf, leaf, 10), at=at)
        await view.flush(kube_writer(Kube(kube_api), namespace))

        every = await (await http.get("/claimed_stacks", headers=_auth(tokens["settler"]))).json()
        assert [s["stack_small_id"] for s in every] == [1, 2]
        assert all(set(s) == SEED_CLAIMED_KEYS for s in every)
        assert every[0]["requested_attestation_nodes"] == "[456, 790]"
        assert every[0]["settlement_time"] == "2024-03-21T12:00:00Z"
        one = await (await http.get("/claimed_stacks/789", headers=_auth(tokens["settler"]))).json()
        assert [s["stack_small_id"] for s in one] == [1]
        bad = await http.get("/claimed_stacks/abc", headers=_auth(tokens["settler"]))
        assert bad.status == 400
