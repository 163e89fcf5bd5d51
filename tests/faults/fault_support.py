"""Helpers for fault tests: bulk resources, operator replicas, and the exactly-once check."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import urllib3
from e2e_support import Localnet, is_true, settlement
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from atoma_dev.controlplane import ControlPlane
from atoma_dev.operator_process import OperatorProcess, metric_sum

GROUP, VERSION, PLURAL = "atoma.network", "v1alpha1", "stacksettlements"
Obj = dict[str, Any]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def poll(check: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.25) -> Any:
    """Call `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)  # polling interval with a deadline, not synchronisation
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


class Fleet:
    """One test's world: the namespace's StackSettlements, the stand-in, operator replicas."""

    def __init__(
        self,
        plane: ControlPlane,
        localnet: Localnet,
        namespace: str,
        api: client.ApiClient,
        workdir: Path,
    ) -> None:
        self.plane = plane
        self.chain = localnet
        self.ns = namespace
        self.custom = client.CustomObjectsApi(api)
        self.workdir = workdir
        self.badges: list[dict[str, Any]] = list(localnet.dev["badges"])
        self.replicas: list[OperatorProcess] = []
        self.revived = 0

    # -- chain side -------------------------------------------------------------------

    def add_badges(self, total: int) -> list[dict[str, Any]]:
        """Make the dev key hold `total` badges (the stand-in starts it with one)."""
        while len(self.badges) < total:
            b = self.chain.admin("/badge", {"owner": self.chain.dev["address"]})
            self.badges.append({"object_id": b["object_id"], "node_small_id": b["node_small_id"]})
        return self.badges

    def add_stacks(self, count: int, *, node: int | None = None, **fields: Any) -> list[int]:
        node = self.badges[0]["node_small_id"] if node is None else node
        payload = {"selected_node_id": node, "owner": self.chain.dev["address"], **fields}
        return [int(self.chain.admin("/stack", payload)["stack_small_id"]) for _ in range(count)]

    def executions(self) -> dict[str, int]:
        result: dict[str, int] = self.chain.counters().get("executions", {})
        return result

    def calls(self) -> dict[str, int]:
        result: dict[str, int] = self.chain.counters().get("calls", {})
        return result

    def ticket(self, stack: int) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self.chain.admin(f"/ticket/{stack}")["ticket"]
        return result

    def gas_balance(self) -> int:
        coins = self.chain.admin(f"/coins/{self.chain.dev['address']}")["coins"]
        return sum(int(c["balance"]) for c in coins)

    # -- operator replicas ------------------------------------------------------------

    def operator_env(self, **extra: str) -> dict[str, str]:
        env: dict[str, str] = self.chain.operator_env(namespace=self.ns, badges=self.badges)
        env.update(
            KUBECONFIG=str(self.plane.kubeconfig),
            ATOMA_NAMESPACES=json.dumps([self.ns]),
        )
        env.update(extra)
        return env

    def operator(
        self, *, standby: bool = False, wait: bool = True, **extra: str
    ) -> OperatorProcess:
        """Start one more replica (a pod of its own: its own leader identity) and wait
        until it leads (serves /metrics) or, with `standby`, until it says it waits;
        `wait=False` returns at once."""
        index = len(self.replicas)
        env = {"ATOMA_LEADER_IDENTITY": f"replica-{index}", **extra}
        proc = OperatorProcess(
            self.operator_env(**env),
            log_file=self.workdir / f"operator-{index}.log",
            metrics_port=free_port(),
        )
        self.replicas.append(proc)
        if not wait:
            return proc.start(wait=False)
        if not standby:
            return proc.start(timeout=90)
        proc.start(wait=False)
        poll(lambda: "standby:" in proc.log_text(), timeout=90, what="a standby replica")
        return proc

    def stop_all(self) -> None:
        for proc in self.replicas:
            proc.stop()

    def logs(self) -> str:
        return "\n".join(p.log_text() for p in self.replicas)

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a metric over the running replicas."""
        return sum(metric_sum(p.metrics(), name, **labels) for p in self.replicas if p.running())

    # -- resources --------------------------------------------------------------------

    def create(self, manifests: Iterable[Obj], *, threads: int = 8) -> list[str]:
        def one(manifest: Obj) -> str:
            manifest["metadata"]["namespace"] = self.ns
            self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, manifest)
            return str(manifest["metadata"]["name"])

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(one, list(manifests)))

    def settle_each(self, stacks: list[int], *, prefix: str = "s", **spec: Any) -> list[str]:
        """One single-stack StackSettlement per stack."""
        return self.create(
            settlement(f"{prefix}{i:04d}", self.ns, [sid], **spec) for i, sid in enumerate(stacks)
        )

    def objects(self) -> dict[str, Obj]:
        listing: Any = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL)
        return {o["metadata"]["name"]: o for o in listing["items"]}

    def revive(self) -> int:
        """Start again every replica that exited, as the kubelet would; returns how many."""
        dead = [p for p in self.replicas if not p.running()]
        for proc in dead:
            proc.stop()  # reap it
            proc.start(timeout=90)
        self.revived += len(dead)
        return len(dead)

    def wait_for(
        self,
        names: list[str],
        done: Callable[[Obj], bool],
        *,
        timeout: float,
        what: str,
        supervise: bool = False,
    ) -> dict[str, Obj]:
        """Poll until `done` holds for every name; `supervise` restarts exited replicas."""

        def check() -> dict[str, Obj] | None:
            if supervise:
                self.revive()
            try:
                objs = self.objects()
            except (ApiException, urllib3.exceptions.HTTPError):
                return None  # the apiserver may be restarting
            if all(n in objs and done(objs[n]) for n in names):
                return objs
            return None

        try:
            result: dict[str, Obj] = poll(check, timeout=timeout, what=what, interval=0.5)
        except AssertionError:
            objs = self.objects()
            stuck = {
                n: (objs.get(n) or {}).get("status") for n in names if not done(objs.get(n) or {})
            }
            first = dict(list(stuck.items())[:3])
            raise AssertionError(
                f"{len(stuck)}/{len(names)} not {what} after {timeout}s; e.g. "
                f"{json.dumps(first, default=str)[:3000]}"
            ) from None
        return result

    def wait_ready(
        self, names: list[str], *, timeout: float, supervise: bool = False
    ) -> dict[str, Obj]:
        return self.wait_for(
            names, lambda o: is_true(o, "Ready"), timeout=timeout, what="Ready", supervise=supervise
        )


def digests_of(obj: Obj) -> list[str]:
    return [
        str(s["txDigest"]) for s in obj.get("status", {}).get("stacks", []) if s.get("txDigest")
    ]


def assert_exactly_once(fleet: Fleet, objs: dict[str, Obj], stacks: dict[str, int]) -> None:
    """Every resource's stack: one digest, executed once; no other transaction executed."""
    executions = fleet.executions()
    seen: set[str] = set()
    for name, sid in stacks.items():
        digests = digests_of(objs[name])
        assert len(digests) == 1, f"{name}: digests {digests}"
        assert executions.get(digests[0]) == 1, (
            f"{name}: {digests[0]} executed {executions.get(digests[0])}x"
        )
        assert fleet.ticket(sid) is not None, f"stack {sid} of {name} has no ticket"
        seen.add(digests[0])
    extra = {d: n for d, n in executions.items() if d not in seen}
    assert not extra, f"transactions executed that no resource records: {extra}"
    assert len(seen) == len(stacks), "two resources recorded the same digest"
