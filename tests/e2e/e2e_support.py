"""Helpers for whole-flow tests: the stand-in in a subprocess, resources, polling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from atoma_dev.controlplane import ControlPlane
from sui_localnet.testing import LocalnetProcess

T = TypeVar("T")

PROOF_HEX = "ab" * 32 * 3  # three 32-byte request hashes


class Localnet:
    """A stand-in subprocess plus a synchronous client for its admin API."""

    def __init__(
        self,
        workdir: Path,
        *,
        seed: int = 0,
        extra_args: list[str] | None = None,
        upgraded_package: bool = True,
    ) -> None:
        # By default the stand-in runs as after a package upgrade (call target != type
        # origin), so any place that mixes the two ids fails the whole-flow tests.
        args = (["--upgraded-package"] if upgraded_package else []) + (extra_args or [])
        self.proc = LocalnetProcess(workdir, seed=seed, extra_args=args)
        self.info: dict[str, Any] = {}

    def start(self) -> dict[str, Any]:
        self.info = self.proc.start()
        return self.info

    def stop(self) -> None:
        self.proc.stop()

    def admin(self, path: str, payload: dict[str, Any] | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(
            self.proc.admin_url + path,
            data=data,
            method="GET" if payload is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    @property
    def dev(self) -> dict[str, Any]:
        dev: dict[str, Any] = self.info["dev_key"]
        return dev

    def counters(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("/counters")
        return result

    def executions(self, digest: str) -> int:
        return int(self.counters().get("executions", {}).get(digest, 0))

    def operator_env(
        self, *, namespace: str, badges: list[dict[str, Any]] | None = None
    ) -> dict[str, str]:
        """The operator's settings for this stand-in (what the Helm chart would set)."""
        return {
            "ATOMA_SUI_RPC_URL": self.proc.grpc_url,
            "ATOMA_PACKAGE_ID": self.info["package_id"],
            "ATOMA_ATOMA_DB_ID": self.info["atoma_db_id"],
            "ATOMA_BADGES": json.dumps(badges if badges is not None else self.dev["badges"]),
            "ATOMA_SIGNING_KEY": self.dev["private_key"],
            "POD_NAMESPACE": namespace,
            "ATOMA_FOLLOWER_INTERVAL_SECONDS": "0.2",
            "ATOMA_RETRY_BASE_SECONDS": "0.5",
            "ATOMA_RETRY_MAX_SECONDS": "4",
            "ATOMA_METRICS_PORT": "0",
            "ATOMA_SUI_REQUEST_TIMEOUT_SECONDS": "5",
            # SettlementPolicy checks are off unless a test turns them on (tests/e2e/
            # test_policy.py): most flows here are about the chain, not about who may spend.
            "ATOMA_POLICY_ENFORCED": "false",
        }


def wait_until(check: Callable[[], T | None], *, timeout: float = 60, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)  # polling interval with a deadline, not synchronisation
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def apply(cp: ControlPlane, manifest: dict[str, Any]) -> None:
    cp.kubectl("apply", "-f", "-", input=json.dumps(manifest))


def get(cp: ControlPlane, kind: str, namespace: str, name: str) -> dict[str, Any]:
    out = cp.kubectl("get", kind, "-n", namespace, name, "-o", "json").stdout
    obj: dict[str, Any] = json.loads(out)
    return obj


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def is_true(obj: dict[str, Any], type_: str) -> bool:
    cond = condition(obj, type_)
    return cond is not None and cond.get("status") == "True"


def settlement(
    name: str,
    namespace: str,
    stacks: list[int],
    *,
    units: int = 10,
    proofs: dict[int, dict[str, Any]] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    proofs = proofs or {}
    return {
        "apiVersion": "atoma.network/v1alpha1",
        "kind": "StackSettlement",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "stackSmallIds": stacks,
            "numClaimedComputeUnits": units,
            "proofs": [
                {"stackSmallId": s, **proofs.get(s, {"totalHash": PROOF_HEX})} for s in stacks
            ],
            **spec,
        },
    }


def attestation(
    name: str, namespace: str, stacks: list[int], *, proof_hex: str = PROOF_HEX, **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "atoma.network/v1alpha1",
        "kind": "Attestation",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "stackSmallIds": stacks,
            "proofs": [{"stackSmallId": s, "totalHash": proof_hex} for s in stacks],
            **spec,
        },
    }


class OperatorProcess:
    """`atoma-operator run` as a subprocess, so a test can kill -9 it and start it again."""

    def __init__(self, env: dict[str, str], log_file: Path) -> None:
        self.env = env
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = Path(sys.executable).with_name("atoma-operator")
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(exe), "run"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
            )

    def kill(self) -> None:
        """SIGKILL: no clean-up runs, exactly like a crashed pod."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
