"""The machinery every benchmark section shares: a control plane, stand-ins, the operator.

One control plane for the whole run (so every figure comes from the same apiserver);
a fresh stand-in per measured phase (the stand-in snapshots its whole state after
every transaction, so a chain that already holds thousands of transactions would make
whichever phase runs later look slower).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config

from atoma_dev.controlplane import ControlPlane
from atoma_dev.operator_process import OperatorProcess
from sui_localnet.testing import LocalnetProcess

REPO = Path(__file__).resolve().parents[1]
PROOF_HEX = "ab" * 32 * 3  # three 32-byte request hashes, as in the e2e tests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Badge:
    object_id: str
    node_small_id: int


@dataclass
class Chain:
    """A running stand-in with `badges` held by the dev key and stacks per badge."""

    proc: LocalnetProcess
    info: dict[str, Any]
    badges: list[Badge]
    stacks: dict[int, list[int]] = field(default_factory=dict)  # node small id -> stacks

    @property
    def dev(self) -> dict[str, Any]:
        dev: dict[str, Any] = self.info["dev_key"]
        return dev

    def admin(self, path: str, payload: dict[str, Any] | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(
            self.proc.admin_url + path,
            data=data,
            method="GET" if payload is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def counters(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("/counters")
        return result

    def add_stacks(self, badge: Badge, count: int) -> list[int]:
        made = [
            int(
                self.admin(
                    "/stack",
                    {"selected_node_id": badge.node_small_id, "owner": self.dev["address"]},
                )["stack_small_id"]
            )
            for _ in range(count)
        ]
        self.stacks.setdefault(badge.node_small_id, []).extend(made)
        return made

    def operator_env(self, *, namespace: str, kubeconfig: Path, **extra: str) -> dict[str, str]:
        """What the Helm chart would set, for this stand-in (the key comes from the env)."""
        env = {
            "KUBECONFIG": str(kubeconfig),
            "ATOMA_SUI_RPC_URL": self.proc.grpc_url,
            "ATOMA_PACKAGE_ID": self.info["package_id"],
            "ATOMA_ATOMA_DB_ID": self.info["atoma_db_id"],
            "ATOMA_BADGES": json.dumps(
                [{"object_id": b.object_id, "node_small_id": b.node_small_id} for b in self.badges]
            ),
            "ATOMA_SIGNING_KEY": self.dev["private_key"],
            "POD_NAMESPACE": namespace,
            "ATOMA_FOLLOWER_INTERVAL_SECONDS": "2",
            "ATOMA_RETRY_BASE_SECONDS": "0.5",
            "ATOMA_RETRY_MAX_SECONDS": "4",
            "ATOMA_SUI_REQUEST_TIMEOUT_SECONDS": "10",
            "ATOMA_POLICY_ENFORCED": "false",  # measures the chain path, not policy reads
        }
        env.update(extra)
        return env


class MemoryLocalnet(LocalnetProcess):
    """The stand-in without `--state`: it would rewrite its whole state as JSON after every
    transaction, which grows quadratically and would make the stand-in the bottleneck
    the benchmark measures. Nothing here kills the stand-in, so nothing needs saving."""

    def start(self, timeout: float = 30.0) -> dict[str, Any]:
        self.info_file.unlink(missing_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "sui_localnet",
            *("--port", str(self.port), "--admin-port", str(self.admin_port)),
            *("--seed", str(self.seed), "--info-file", str(self.info_file)),
            *self.extra_args,
        ]
        with (self.workdir / "localnet.log").open("ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"localnet exited with {self.proc.returncode}")
            if self.info_file.exists():
                with contextlib.suppress(json.JSONDecodeError):
                    info: dict[str, Any] = json.loads(self.info_file.read_text())
                    return info
            time.sleep(0.05)  # polling a file with a deadline
        raise TimeoutError("localnet did not start in time")


@contextmanager
def chain(
    workdir: Path,
    *,
    badges: int,
    coins: int,
    seed: int | None = None,
    latency: float = 0.0,
    jitter: float = 0.0,
) -> Iterator[Chain]:
    """A stand-in subprocess whose dev key holds `badges` badges and `coins` gas coins;
    `latency` > 0 turns on its consensus latency (mean ± `jitter` seconds)."""
    workdir.mkdir(parents=True, exist_ok=True)
    extra = ["--coins", str(coins), "--stacks", "0", "--badges", str(max(1, badges))]
    if latency > 0:
        extra += ["--shared-latency", str(latency), "--shared-latency-jitter", str(jitter)]
    proc = MemoryLocalnet(
        workdir, seed=secrets.randbelow(2**31) if seed is None else seed, extra_args=extra
    )
    info = proc.start(timeout=120)
    try:
        made = Chain(
            proc,
            info,
            [Badge(b["object_id"], b["node_small_id"]) for b in info["dev_key"]["badges"]],
        )
        while len(made.badges) < badges:
            b = made.admin("/badge", {"owner": made.dev["address"]})
            made.badges.append(Badge(b["object_id"], int(b["node_small_id"])))
        yield made
    finally:
        proc.stop()


class Cluster:
    """The control plane with the CRDs applied, and a Python client for bulk work."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(plane.kubeconfig)
        )
        self.api.configuration.connection_pool_maxsize = 16
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)

    def namespace(self, prefix: str) -> str:
        name = f"{prefix}-{secrets.token_hex(3)}"
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        return name

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]


@contextmanager
def cluster() -> Iterator[Cluster]:
    with ControlPlane() as plane:
        plane.apply_crds(sorted((REPO / "crds").glob("*.yaml")))
        made = Cluster(plane)
        try:
            yield made
        finally:
            made.close()


def operator(env: dict[str, str], workdir: Path, name: str = "operator") -> OperatorProcess:
    """An operator process (not yet started) logging to `workdir/<name>.log`."""
    return OperatorProcess(env, log_file=workdir / f"{name}.log", metrics_port=free_port())


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="atoma-bench-"))
