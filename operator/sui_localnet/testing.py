"""Helpers to run the stand-in from tests: in-process, in a subprocess, and a pysui client.

pysui opens TLS channels; the stand-in speaks plaintext, so `pysui_client` swaps in a
plaintext grpclib channel — the same thing the operator's gateway does for http:// URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from .node import LocalSui


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def running_localnet(**kwargs: Any) -> AsyncIterator[LocalSui]:
    """A LocalSui serving gRPC (and admin HTTP if `admin_port` is given) on free ports."""
    admin_port = kwargs.pop("admin_port", None)
    tls = kwargs.pop("tls", None)  # (cert PEM path, key PEM path): serve https://
    node = LocalSui(**kwargs)
    await node.start("127.0.0.1", 0, admin_port, tls=tls)
    try:
        yield node
    finally:
        await node.stop()


class LocalnetProcess:
    """`python -m sui_localnet` in a subprocess, for kill/restart tests."""

    def __init__(self, workdir: Path, *, seed: int = 0, extra_args: Sequence[str] = ()) -> None:
        self.workdir = workdir
        self.seed = seed
        self.extra_args = list(extra_args)
        self.port = free_port()
        self.admin_port = free_port()
        self.state_file = workdir / "localnet-state.json"
        self.info_file = workdir / "localnet-info.json"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def grpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, timeout: float = 30.0) -> dict[str, Any]:
        self.info_file.unlink(missing_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "sui_localnet",
            "--port",
            str(self.port),
            "--admin-port",
            str(self.admin_port),
            "--seed",
            str(self.seed),
            "--state",
            str(self.state_file),
            "--info-file",
            str(self.info_file),
            *self.extra_args,
        ]
        log = (self.workdir / "localnet.log").open("ab")
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"localnet exited with {self.proc.returncode}; see {log.name}")
            if self.info_file.exists():
                with contextlib.suppress(json.JSONDecodeError):
                    info: dict[str, Any] = json.loads(self.info_file.read_text())
                    return info
            time.sleep(0.05)  # polling a file with a deadline, not synchronising on time
        raise TimeoutError("localnet did not start in time")

    def kill(self) -> None:
        """SIGKILL: no chance to save — the state file holds what was saved on each change."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def restart(self) -> dict[str, Any]:
        self.kill()
        return self.start()

    async def admin(self, path: str, payload: dict[str, Any] | None = None) -> Any:
        """POST (with payload) or GET an admin route and return its JSON."""
        import aiohttp

        async with aiohttp.ClientSession() as session:
            if payload is None:
                resp = await session.get(self.admin_url + path)
            else:
                resp = await session.post(self.admin_url + path, json=payload)
            async with resp:
                return await resp.json()


def pysui_client(url: str, keys: Sequence[Any], *, config_dir: Path | None = None) -> Any:
    """A pysui GrpcProtocolClient for `url` over plaintext, signing with `keys` (SuiKeyPair).

    The first key's address is the active address. Call `await client.close()` when done.
    """
    from grpclib.client import Channel
    from pysui import PysuiConfiguration
    from pysui.sui.sui_common.config.confgroup import GroupProtocol, NetworkType
    from pysui.sui.sui_grpc.pgrpc_clients import GrpcProtocolClient

    folder = config_dir or Path(tempfile.mkdtemp(prefix="pysui-localnet-"))
    cfg = PysuiConfiguration.initialize_config(
        in_folder=folder, init_groups=[{"name": "bootstrap", "make_active": True}]
    )
    cfg.new_group(
        group_name="localnet",
        profile_block=[
            {
                "profile_name": "localnet",
                "url": url,
                "network_type": NetworkType.LOCAL,
                "make_active": True,
            }
        ],
        key_block=[{"key_string": k.to_bech32(), "alias": f"key{i}"} for i, k in enumerate(keys)],
        active_address_index=0,
        group_protocol=GroupProtocol.GRPC,
        make_group_active=True,
        persist=False,
    )
    client = GrpcProtocolClient(pysui_config=cfg)
    host_port = url.split("://", 1)[-1]
    host, port = host_port.rsplit(":", 1)
    client._channel.close()
    client._channel = Channel(host, int(port), ssl=False)
    return client


async def wait_for(predicate: Any, deadline_s: float = 10.0, interval: float = 0.02) -> None:
    """Poll `predicate()` until true or fail after `deadline_s` seconds."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(interval)
    raise TimeoutError("condition not met in time")
