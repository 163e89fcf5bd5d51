"""Starting and stopping child processes by pid, and polling with a deadline.

Only processes this package started are ever signalled: each is identified by its pid
*and* its executable, so a recycled pid (after a reboot or a long-dead state file) is
never killed by mistake.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_PR_SET_PDEATHSIG = 1


class DeadlineExceeded(TimeoutError):
    """A polled condition did not hold before its deadline."""


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
) -> T:
    """Call ``check`` until it returns a value other than None; raise after ``timeout``.

    ``check`` may raise to abort early (e.g. when the process it waits for has died).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise DeadlineExceeded(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:
    # Runs in the child between fork and exec (prctl resolved beforehand, so the child
    # only makes one syscall): if the test process dies hard (SIGKILL, OOM), the kernel
    # kills the child too, so no apiserver outlives its pytest session.
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(argv: Sequence[str | Path], log_file: Path, *, detached: bool) -> subprocess.Popen[bytes]:
    """Start ``argv`` with stdout and stderr appended to ``log_file``.

    ``detached`` puts the process in its own session so it survives the caller (for
    ``atoma-dev control-plane up``); otherwise it dies with its parent.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [str(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=detached,
            preexec_fn=None if detached else _die_with_parent,
        )


def exe_of(pid: int) -> Path | None:
    """The executable of a running pid, or None if it is gone (or a zombie)."""
    try:
        return Path(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return None


def is_running(pid: int, exe: Path) -> bool:
    """True when ``pid`` is alive and runs ``exe`` (guards against recycled pids)."""
    current = exe_of(pid)
    return current is not None and current.resolve() == exe.resolve()


def terminate(
    pid: int, exe: Path, *, timeout: float = 15.0, child: subprocess.Popen[bytes] | None = None
) -> None:
    """SIGTERM ``pid`` if it still runs ``exe``; SIGKILL it after ``timeout``.

    ``child`` (our own Popen) is reaped with wait(); a pid from a state file is not our
    child, so we poll /proc until it disappears.
    """
    if not is_running(pid, exe):
        if child is not None:
            child.poll()
        return
    for sig, grace in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if child is not None:
            try:
                child.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue
        try:
            wait_until(
                lambda: True if not is_running(pid, exe) else None,
                timeout=grace,
                what=f"pid {pid} to exit",
            )
            return
        except DeadlineExceeded:
            continue
    raise DeadlineExceeded(f"pid {pid} ({exe.name}) survived SIGKILL")
