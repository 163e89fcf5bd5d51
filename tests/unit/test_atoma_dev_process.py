"""Process helpers: deadline polling and the pid-plus-executable kill guard."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from atoma_dev.process import DeadlineExceeded, exe_of, is_running, spawn, terminate, wait_until


def test_wait_until_returns_the_first_non_none_value() -> None:
    calls = iter([None, None, "ready"])
    assert wait_until(lambda: next(calls), timeout=5, what="x", interval=0.001) == "ready"


def test_wait_until_raises_after_the_deadline() -> None:
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="the impossible"):
        wait_until(lambda: None, timeout=0.2, what="the impossible", interval=0.01)
    assert time.monotonic() - started >= 0.2


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    child = spawn(
        [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "l", detached=False
    )
    yield child
    if child.poll() is None:
        child.kill()
        child.wait()


def test_terminate_refuses_a_pid_running_another_executable(
    sleeper: subprocess.Popen[bytes],
) -> None:
    # A recycled pid: same number, different program. It must survive.
    terminate(sleeper.pid, Path("/bin/true"), timeout=1)
    assert sleeper.poll() is None


def test_terminate_stops_our_own_child(sleeper: subprocess.Popen[bytes]) -> None:
    exe = exe_of(sleeper.pid)
    assert exe is not None
    assert is_running(sleeper.pid, exe)
    terminate(sleeper.pid, exe, child=sleeper, timeout=5)
    assert sleeper.returncode is not None
    assert not is_running(sleeper.pid, exe)
