"""Sampling the operator process with py-spy during a phase, and its top cumulative costs.

py-spy attaches to the running operator (all threads, so the kubernetes client's worker
threads count too, which cProfile would miss) and writes collapsed stacks of the samples
that hold the GIL (`--gil`: Python CPU, not threads parked in a socket read). A
function's cumulative share is the fraction of samples whose stack contains it; the
interpreter's and event loop's own root frames (in every stack) are left out of that
ranking, and `packages` gives the share of samples that pass through each library.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import TracebackType


def py_spy() -> str:
    """The py-spy binary next to this interpreter (the venv's), or on PATH."""
    here = Path(sys.executable).parent / "py-spy"
    found = str(here) if here.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("py-spy not found: pip install py-spy (it is in the test extra)")
    return found


class Sampler:
    """`py-spy record --pid` for the duration of a `with` block (raw collapsed stacks)."""

    def __init__(self, pid: int, out: Path, rate: int = 100) -> None:
        self.pid, self.out, self.rate = pid, out, rate
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Sampler:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [py_spy(), "record", "--pid", str(self.pid), "--rate", str(self.rate)]
        cmd += ["--format", "raw", "--output", str(self.out), "--nonblocking", "--gil"]
        log = (self.out.parent / (self.out.name + ".log")).open("wb")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _frame(raw: str) -> str:
    """'fn (path/to/module.py:123)' -> 'fn (module.py)': one entry per function, not line."""
    name, _, where = raw.rpartition(" (")
    if not name:
        return raw
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if len(parts) >= 2 else path
    return f"{name} ({short})"


ROOT_FRAMES = (
    "<frozen runpy>",
    "threading.py",
    "asyncio/runners.py",
    "asyncio/base_events.py",
    "asyncio/events.py",
    "futures/thread.py",
    "atoma_operator/cli.py",
    "reactor/running.py",
)
"""Frames on (nearly) every stack: ranking them says nothing about where the time goes."""

PACKAGES = (
    "kopf",
    "kubernetes",
    "urllib3",
    "pydantic",
    "pysui",
    "betterproto2",
    "grpclib",
    "aiohttp",
    "prometheus_client",
    "atoma_operator",
    "json",
    "ssl",
)


def _is_root(raw: str) -> bool:
    where = raw.rpartition(" (")[2]
    return any(where.startswith(root) or f"/{root}" in where for root in ROOT_FRAMES)


def _package(raw: str) -> str | None:
    where = raw.rpartition(" (")[2]
    for name in PACKAGES:
        if f"/{name}/" in f"/{where}" or where.startswith(f"{name}.py") or f"/{name}.py" in where:
            return name
    return None


def top_costs(raw_file: Path, k: int = 10) -> dict[str, object]:
    """The k functions with the largest cumulative and self shares of the samples."""
    cumulative: Counter[str] = Counter()
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw_file.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        raw_frames = [f for f in stack.split(";") if not _is_root(f)]
        for name in {_frame(f) for f in raw_frames}:
            cumulative[name] += count
        own[frames[-1]] += count
        for package in {p for p in map(_package, raw_frames) if p is not None}:
            packages[package] += count
    return {
        "samples": total,
        "cumulative": [(name, n / total) for name, n in cumulative.most_common(k)] if total else [],
        "self": [(name, n / total) for name, n in own.most_common(k)] if total else [],
        "packages": [(name, n / total) for name, n in packages.most_common()] if total else [],
    }
