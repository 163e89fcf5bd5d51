"""``atoma-dev demo up|down``: the quick start, end to end on this machine.

``up`` starts (detached) a local control plane, the Sui stand-in, the node's state
database (PostgreSQL, its stacks' total hashes appended as the node appends them) and
the operator, applies the CRDs and a sample StackSettlement and Attestation that name
only stack ids, waits until both are Ready and prints them with ``kubectl get``. ``down`` stops every process it started.
Everything lives in the state dir (pids, logs, kubeconfig, stand-in snapshot).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any, Final

from atoma_dev.binaries import BinaryBuildError
from atoma_dev.commands.control_plane import DEFAULT_STATE_DIR
from atoma_dev.controlplane import STATE_FILE, ControlPlane, ControlPlaneError, _free_port
from atoma_dev.postgres import STATE_FILE as POSTGRES_STATE_FILE
from atoma_dev.postgres import Postgres, PostgresError
from atoma_dev.process import DeadlineExceeded, spawn, wait_until

REPO: Final = Path(__file__).resolve().parents[3]
REQUEST_HASHES: Final = ("ab" * 32, "cd" * 32, "ef" * 32)  # three served requests
NAMESPACE: Final = "atoma-demo"


def _info(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


def _pid_alive(pid: int) -> bool:
    """Running (an exited child not yet reaped by its new parent counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _exited(pid: int) -> bool | None:
    return None if _pid_alive(pid) else True


def _start_detached(name: str, argv: list[str], state: Path, env: dict[str, str]) -> int:
    pid_file = state / f"{name}.pid"
    if pid_file.exists() and _pid_alive(int(pid_file.read_text())):
        _info(f"{name} already running (pid {pid_file.read_text().strip()})")
        return int(pid_file.read_text())
    old_env = dict(os.environ)
    os.environ.update(env)
    try:
        proc = spawn(argv, state / f"{name}.log", detached=True)
    finally:
        os.environ.clear()
        os.environ.update(old_env)
    pid_file.write_text(str(proc.pid))
    _info(f"{name} started (pid {proc.pid}, log {state / f'{name}.log'})")
    return proc.pid


def _control_plane(state: Path) -> ControlPlane:
    pg_dir = state / "postgres"
    if (pg_dir / POSTGRES_STATE_FILE).is_file():
        Postgres.attach(pg_dir).stop()
        _info("stopped the state database")
    plane_dir = state / "control-plane"
    if (plane_dir / STATE_FILE).is_file():
        plane = ControlPlane.attach(plane_dir)
        if plane.is_running():
            return plane
        plane.stop(keep_logs=False)
    plane = ControlPlane(plane_dir, detached=True)
    plane.start()
    _info(f"control plane up at {plane.server} in {plane.startup_seconds:.1f}s")
    return plane


def _localnet(state: Path) -> dict[str, Any]:
    info_file = state / "localnet-info.json"
    argv = [
        sys.executable, "-m", "sui_localnet",
        "--port", "0", "--admin-port", "0",
        "--state", str(state / "localnet-state.json"),
        "--info-file", str(info_file),
        "--stacks", "3", "--security-level", "2", "--sampling-probability", "1.0",
        "--upgraded-package",  # call target != type origin, as on testnet
    ]  # fmt: skip
    pid_file = state / "localnet.pid"
    if not (pid_file.exists() and _pid_alive(int(pid_file.read_text()))):
        info_file.unlink(missing_ok=True)
    _start_detached("localnet", argv, state, {})
    wait_until(lambda: True if info_file.is_file() else None, timeout=60, what="the Sui stand-in")
    info: dict[str, Any] = json.loads(info_file.read_text())
    _info(f"Sui stand-in at {info['grpc_url']} (package {info['package_id'][:12]}...)")
    return info


def _state_database(state: Path, stacks: list[int], node: int) -> Postgres:
    """The node's state database: each demo stack inserted, then its requests appended
    one `total_hash = total_hash || hash` at a time, as atoma-node records them."""
    pg_dir = state / "postgres"
    if (pg_dir / POSTGRES_STATE_FILE).is_file():
        server = Postgres.attach(pg_dir)
        if server.is_running():
            return server
        server.stop()
    server = Postgres(pg_dir, detached=True).start()
    for sid in stacks:
        server.psql(
            "INSERT INTO stacks VALUES "
            f"({sid}, '0xdemo', 'demo-stack-{sid}', 1, {node}, 1000, 1, 0, false, ''::bytea, 0)"
        )
        for digest in REQUEST_HASHES:
            server.psql(
                f"UPDATE stacks SET total_hash = total_hash || '\\x{digest}'::bytea, "
                f"num_total_messages = num_total_messages + 1 WHERE stack_small_id = {sid}"
            )
    _info(f"state database at 127.0.0.1:{server.port} ({len(stacks)} stacks)")
    return server


def _operator_env(
    info: dict[str, Any], kubeconfig: Path, state_db: Postgres, metrics_port: int
) -> dict[str, str]:
    dev = info["dev_key"]
    return {
        "ATOMA_STATE_DATABASE_DSN": state_db.reader_dsn,
        "ATOMA_STATE_DATABASE_SSLMODE": "disable",  # loopback
        "KUBECONFIG": str(kubeconfig),
        "ATOMA_SUI_RPC_URL": info["grpc_url"],
        "ATOMA_PACKAGE_ID": info["package_id"],
        "ATOMA_ATOMA_DB_ID": info["atoma_db_id"],
        "ATOMA_BADGES": json.dumps(dev["badges"]),
        "ATOMA_SIGNING_KEY": dev["private_key"],  # the stand-in's throwaway dev key
        "POD_NAMESPACE": NAMESPACE,
        "ATOMA_METRICS_PORT": str(metrics_port),
    }


def _samples(stacks: list[int]) -> list[dict[str, Any]]:
    """Like the daemon's requests: stack ids only; the proofs come from the database."""
    meta = {"namespace": NAMESPACE}
    return [
        {
            "apiVersion": "atoma.network/v1alpha1",
            "kind": "StackSettlement",
            "metadata": {"name": "demo-settlement", **meta},
            "spec": {
                "stackSmallIds": stacks,
                "numClaimedComputeUnits": 100,
                "proofScheme": "Contract",
                "proofSource": "StateDatabase",
            },
        },
        {
            "apiVersion": "atoma.network/v1alpha1",
            "kind": "Attestation",
            "metadata": {"name": "demo-attestation", **meta},
            "spec": {
                "stackSmallIds": stacks,
                "proofScheme": "Contract",
                "proofSource": "StateDatabase",
            },
        },
    ]


def _policy(badges: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "atoma.network/v1alpha1",
        "kind": "SettlementPolicy",
        "metadata": {"name": NAMESPACE},
        "spec": {
            "namespaces": [NAMESPACE],
            "nodeSmallIds": [b["node_small_id"] for b in badges],
            "maxGasBudget": 50_000_000,
            "maxGasPrice": 10_000,
        },
    }


def _cmd_up(args: argparse.Namespace) -> int:
    state: Path = args.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    try:
        plane = _control_plane(state)
        plane.apply_crds(sorted((REPO / "crds").glob("*.yaml")))
        info = _localnet(state)
        stacks = info["dev_key"]["stacks"]
        node = int(info["dev_key"]["badges"][0]["node_small_id"])
        state_db = _state_database(state, stacks, node)
        metrics_url = f"http://127.0.0.1:{(metrics_port := _free_port())}/metrics"
        env = _operator_env(info, plane.kubeconfig, state_db, metrics_port)
        operator = [str(Path(sys.executable).with_name("atoma-operator")), "run"]
        _start_detached("operator", operator, state, env)
        if plane.kubectl("get", "namespace", NAMESPACE, check=False).returncode != 0:
            plane.kubectl("create", "namespace", NAMESPACE)
        # Who may spend: the demo namespace may use the stand-in's badges (see README,
        # "Security model"); without a policy the operator would refuse the samples.
        plane.kubectl("apply", "-f", "-", input=json.dumps(_policy(info["dev_key"]["badges"])))
        settlement, attestation = _samples(stacks)
        plane.kubectl("apply", "-f", "-", input=json.dumps(settlement))
        _wait_ready(plane, "stacksettlement/demo-settlement", args.timeout)
        plane.kubectl("apply", "-f", "-", input=json.dumps(attestation))
        _wait_ready(plane, "attestation/demo-attestation", args.timeout)
        # The dispute period ends with the epoch: advance it and watch the follower
        # carry the final outcome (Settled) into the StackSettlement's status.
        _admin(info, "/epoch/advance")
        _wait_ready(plane, "stacksettlement/demo-settlement", args.timeout, "Settled")
    except (
        ControlPlaneError,
        PostgresError,
        BinaryBuildError,
        DeadlineExceeded,
        subprocess.SubprocessError,
    ) as exc:
        _info(f"demo failed: {exc}; logs are in {state}")
        return 1
    print(plane.kubectl("get", "atoma", "-A").stdout)
    print(f"metrics: {metrics_url}")
    print(f"export KUBECONFIG={plane.kubeconfig}")
    _info(f"try: kubectl get stl -n {NAMESPACE} -o yaml    stop with: atoma-dev demo down")
    return 0


def _wait_ready(plane: ControlPlane, ref: str, timeout: float, condition: str = "Ready") -> None:
    started = time.monotonic()
    plane.kubectl(
        "wait", f"--for=condition={condition}", ref, "-n", NAMESPACE,
        f"--timeout={int(timeout)}s", timeout=timeout + 10,
    )  # fmt: skip
    _info(f"{ref} is {condition} after {time.monotonic() - started:.1f}s")


def _admin(info: dict[str, Any], path: str) -> None:
    """POST to the stand-in's admin API (test and demo only)."""
    request = urllib.request.Request(info["admin_url"] + path, data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def _cmd_down(args: argparse.Namespace) -> int:
    state: Path = args.state_dir.resolve()
    for name in ("operator", "localnet"):
        pid_file = state / f"{name}.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text())
            if _pid_alive(pid):
                os.kill(pid, signal.SIGTERM)
                try:
                    wait_until(partial(_exited, pid), timeout=30, what=f"{name} to exit")
                except DeadlineExceeded:
                    os.kill(pid, signal.SIGKILL)
                _info(f"stopped {name} (pid {pid})")
            pid_file.unlink()
    pg_dir = state / "postgres"
    if (pg_dir / POSTGRES_STATE_FILE).is_file():
        Postgres.attach(pg_dir).stop()
        _info("stopped the state database")
    plane_dir = state / "control-plane"
    if (plane_dir / STATE_FILE).is_file():
        ControlPlane.attach(plane_dir).stop(keep_logs=False)
        _info("stopped the control plane")
    return 0


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` command group to the ``atoma-dev`` parser."""
    parser = groups.add_parser("demo", help="the quick start: everything local, end to end")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, handler, text in (
        ("up", _cmd_up, "start control plane, stand-in and operator; apply samples"),
        ("down", _cmd_down, "stop everything demo up started"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
        command.set_defaults(handler=handler)
    commands.choices["up"].add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for Ready"
    )
