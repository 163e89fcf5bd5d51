"""`atoma-operator run` in a subprocess, for fault tests (kill -9, replicas) and benchmarks.

In-process runners (kopf.testing.KopfRunner) cannot be killed hard or measured on
their own; a real process can: SIGKILL at any moment, its RSS and CPU read from
/proc, its Prometheus endpoint scraped over HTTP. Only the process this object
started is ever signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from atoma_dev.process import _die_with_parent, wait_until

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcessUsage:
    """Resident memory (now and peak) and CPU time so far (user + system) of one process."""

    rss_bytes: int
    peak_rss_bytes: int
    cpu_seconds: float


def process_usage(pid: int) -> ProcessUsage:
    """Read /proc (no psutil dependency): VmRSS/VmHWM from status, utime+stime from stat."""
    kib: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            kib[key] = int(value.split()[0])
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return ProcessUsage(
        kib.get("VmRSS", 0) * 1024, kib.get("VmHWM", 0) * 1024, (utime + stime) / _CLK_TCK
    )


def parse_samples(text: str) -> dict[str, float]:
    """Prometheus text -> {'name{label="v",...}': value} (labels sorted), for easy lookups."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def metric_sum(samples: Mapping[str, float], name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (exact values)."""
    wanted = {f'{k}="{v}"' for k, v in labels.items()}
    total = 0.0
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        if base == name and wanted <= set(rest.rstrip("}").split(",")):
            total += value
    return total


class OperatorProcess:
    """One operator replica: `python -m atoma_operator.cli run` with the given environment.

    `env` is added to this process's environment (settings are ATOMA_* variables and
    KUBECONFIG, as in a pod). `metrics_port` must be free; the process is considered
    started once it leads: /metrics shows atoma_operator_leader 1 (the runtime is built
    before the port opens; a standby may serve /metrics with 0).
    """

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        log_file: Path,
        metrics_port: int,
        args: tuple[str, ...] = (),
    ) -> None:
        self.env = {**os.environ, **env, "ATOMA_METRICS_PORT": str(metrics_port)}
        self.env["PYTHONUNBUFFERED"] = "1"
        self.log_file = log_file
        self.metrics_port = metrics_port
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("operator not running")
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, *, timeout: float = 60.0, wait: bool = True) -> OperatorProcess:
        if self.running():
            raise RuntimeError("operator already running")
        argv = [sys.executable, "-m", "atoma_operator.cli", "run", *self.args]
        self.proc = _spawn_with_env(argv, self.log_file, self.env)
        self.starts += 1
        if wait:
            wait_until(self._serving, timeout=timeout, what="operator /metrics", interval=0.1)
        return self

    def _serving(self) -> bool | None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise RuntimeError(f"operator exited ({code}); log: {self.log_file}")
        try:
            text = self.metrics_text(timeout=1)
        except (OSError, urllib.error.URLError):
            return None
        return parse_samples(text).get("atoma_operator_leader") == 1 or None

    def kill(self) -> None:
        """SIGKILL: no clean-up, no final writes — what a node failure looks like."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (kopf's graceful shutdown), SIGKILL after `timeout`."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, *, timeout: float = 60.0) -> OperatorProcess:
        self.kill()
        return self.start(timeout=timeout)

    def metrics_text(self, timeout: float = 5.0) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with _NO_PROXY.open(url, timeout=timeout) as resp:
            text: str = resp.read().decode()
            return text

    def metrics(self) -> dict[str, float]:
        return parse_samples(self.metrics_text())

    def usage(self) -> ProcessUsage:
        return process_usage(self.pid)

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


def _spawn_with_env(
    argv: list[str], log_file: Path, env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    """Like `atoma_dev.process.spawn` (the child dies with its parent), with `env`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        return subprocess.Popen(
            argv,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
