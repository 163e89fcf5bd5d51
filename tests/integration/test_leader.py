"""Leader election on a real Lease: one holder at a time, takeover after expiry, and a
restarted process with the same identity takes its Lease back at once."""

from __future__ import annotations

import asyncio

import pytest
from kubernetes import client

from atoma_operator.leader import LeaderElector

pytestmark = pytest.mark.integration


def _elector(api: client.ApiClient, ns: str, identity: str, lost: list[str]) -> LeaderElector:
    return LeaderElector(
        api,
        namespace=ns,
        name="atoma-operator",
        identity=identity,
        lease_seconds=2,
        retry_seconds=0.2,
        on_lost=lambda: lost.append(identity),
    )


async def test_second_replica_waits_until_the_lease_expires(
    kube_api: client.ApiClient, namespace: str
) -> None:
    lost: list[str] = []
    first = _elector(kube_api, namespace, "pod-a", lost)
    second = _elector(kube_api, namespace, "pod-b", lost)
    await first.acquire()
    assert first.is_leader
    waiting = asyncio.create_task(second.acquire())
    keeper = asyncio.create_task(first.keep())
    coordination = client.CoordinationV1Api(kube_api)
    first_renewal = coordination.read_namespaced_lease("atoma-operator", namespace).spec.renew_time

    def renewed_past_expiry() -> bool:
        renew = coordination.read_namespaced_lease("atoma-operator", namespace).spec.renew_time
        return bool((renew - first_renewal).total_seconds() > first.lease_seconds)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while not renewed_past_expiry():  # poll: renewal must carry the lease past its expiry
        assert loop.time() < deadline, "the leader never renewed its lease"
        await asyncio.sleep(0.2)
    assert not waiting.done() and not second.is_leader
    keeper.cancel()  # pod-a stops renewing (crashed)
    await asyncio.wait_for(waiting, timeout=10)
    assert second.is_leader
    lease = client.CoordinationV1Api(kube_api).read_namespaced_lease("atoma-operator", namespace)
    assert lease.spec.holder_identity == "pod-b"
    assert lost == []


async def test_same_identity_takes_its_lease_back_immediately(
    kube_api: client.ApiClient, namespace: str
) -> None:
    lost: list[str] = []
    await _elector(kube_api, namespace, "pod-a", lost).acquire()
    again = _elector(kube_api, namespace, "pod-a", lost)
    await asyncio.wait_for(again.acquire(), timeout=1)
    assert again.is_leader


async def test_leader_that_loses_the_lease_stops(
    kube_api: client.ApiClient, namespace: str
) -> None:
    lost: list[str] = []
    first = _elector(kube_api, namespace, "pod-a", lost)
    await first.acquire()
    coordination = client.CoordinationV1Api(kube_api)
    coordination.patch_namespaced_lease(
        "atoma-operator",
        namespace,
        {"spec": {"holderIdentity": "pod-z", "leaseDurationSeconds": 60}},
    )
    await asyncio.wait_for(first.keep(), timeout=10)
    assert lost == ["pod-a"] and not first.is_leader


async def test_a_holder_whose_clock_runs_behind_is_not_taken_over(
    kube_api: client.ApiClient, namespace: str
) -> None:
    """Expiry is judged on the candidate's own clock from observed renewals (as client-go
    does), never by comparing the holder's renewTime with the local wall clock: a holder
    whose clock is an hour behind keeps its lease while it renews."""
    coordination = client.CoordinationV1Api(kube_api)
    coordination.create_namespaced_lease(
        namespace,
        {
            "metadata": {"name": "atoma-operator"},
            "spec": {"holderIdentity": "skewed", "leaseDurationSeconds": 2},
        },
    )
    lost: list[str] = []
    candidate = _elector(kube_api, namespace, "pod-b", lost)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 6  # three lease durations of renewals by the skewed holder
    renewals = 0
    while loop.time() < deadline:
        assert not await candidate._try_take(), "took over a lease that is being renewed"
        renewals += 1
        coordination.patch_namespaced_lease(  # the holder's clock is years behind
            "atoma-operator",
            namespace,
            [
                {
                    "op": "add",
                    "path": "/spec/renewTime",
                    "value": f"2020-01-01T00:00:{renewals % 60:02d}.000000Z",
                }
            ],
        )
        await asyncio.sleep(0.5)  # the holder's renewal period (a simulated peer)
    assert candidate.is_leader is False
    # The holder stops renewing: after one lease duration on the candidate's clock, it wins.
    deadline = loop.time() + 10
    while not await candidate._try_take():
        assert loop.time() < deadline, "an abandoned lease was never taken over"
        await asyncio.sleep(0.2)
    assert coordination.read_namespaced_lease("atoma-operator", namespace).spec.holder_identity == (
        "pod-b"
    )
