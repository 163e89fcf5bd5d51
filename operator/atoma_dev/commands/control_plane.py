"""``atoma-dev control-plane build|up|down|status``: the local Kubernetes API for the demo.

``up`` starts etcd and kube-apiserver detached, records their pids in the state dir and
prints ``export KUBECONFIG=...`` on stdout (everything else goes to stderr), so
``eval "$(atoma-dev control-plane up)"`` works. ``down`` stops exactly those pids.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Final, get_args

from atoma_dev.binaries import BinaryBuildError, Component, ensure_binaries
from atoma_dev.controlplane import STATE_FILE, ControlPlane, ControlPlaneError

DEFAULT_STATE_DIR: Final = Path(".atoma-dev")
_SUBDIR: Final = "control-plane"


def _info(message: str) -> None:
    print(f"[atoma-dev] {message}", file=sys.stderr, flush=True)


def _plane_dir(args: argparse.Namespace) -> Path:
    state_dir: Path = args.state_dir
    return state_dir.resolve() / _SUBDIR


def _running(plane_dir: Path) -> ControlPlane | None:
    if not (plane_dir / STATE_FILE).is_file():
        return None
    plane = ControlPlane.attach(plane_dir)
    return plane if plane.is_running() else None


def _cmd_build(args: argparse.Namespace) -> int:
    components: tuple[Component, ...] = tuple(args.only) or get_args(Component)
    try:
        binaries = ensure_binaries(components)
    except BinaryBuildError as exc:
        _info(f"build failed: {exc}")
        return 1
    for component in components:
        print(f"{component}={binaries.path(component)}")
    return 0


def _cmd_up(args: argparse.Namespace) -> int:
    plane_dir = _plane_dir(args)
    running = _running(plane_dir)
    if running is not None:
        _info(f"already running at {running.server}")
        print(f"export KUBECONFIG={running.kubeconfig}")
        return 0
    if plane_dir.exists():
        # Leftovers of a crashed or killed run: the processes are gone (checked above).
        stale = ControlPlane.attach(plane_dir) if (plane_dir / STATE_FILE).is_file() else None
        if stale is not None:
            stale.stop(keep_logs=False)
        shutil.rmtree(plane_dir, ignore_errors=True)
    plane = ControlPlane(plane_dir, detached=True, startup_timeout=args.timeout)
    try:
        plane.start()
    except (ControlPlaneError, BinaryBuildError) as exc:
        _info(f"control plane failed to start: {exc}")
        return 1
    _info(f"control plane up at {plane.server} in {plane.startup_seconds:.1f}s, pids {plane.pids}")
    print(f"export KUBECONFIG={plane.kubeconfig}")
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    plane_dir = _plane_dir(args)
    if not (plane_dir / STATE_FILE).is_file():
        _info(f"no control plane recorded in {plane_dir}")
        return 0
    plane = ControlPlane.attach(plane_dir)
    pids = plane.pids
    plane.stop(keep_logs=False)
    _info(f"stopped {pids}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    running = _running(_plane_dir(args))
    if running is None:
        print("control plane: not running")
        return 3
    print(f"control plane: running at {running.server}, pids {running.pids}")
    print(f"export KUBECONFIG={running.kubeconfig}")
    return 0


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``control-plane`` command group to the ``atoma-dev`` parser."""
    parser = groups.add_parser("control-plane", help="local etcd + kube-apiserver")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = commands.add_parser("build", help="build and cache the binaries (no start)")
    build.add_argument(
        "--only",
        action="append",
        default=[],
        choices=get_args(Component),
        help="build only this component (repeatable); default: all",
    )
    build.set_defaults(handler=_cmd_build)

    for name, handler, text in (
        ("up", _cmd_up, "start detached and print export KUBECONFIG=..."),
        ("down", _cmd_down, "stop the processes started by up"),
        ("status", _cmd_status, "exit 0 if running (3 if not)"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument(
            "--state-dir",
            type=Path,
            default=DEFAULT_STATE_DIR,
            help=f"where pids, logs and kubeconfig live (default: {DEFAULT_STATE_DIR})",
        )
        command.set_defaults(handler=handler)
    commands.choices["up"].add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for readiness"
    )
