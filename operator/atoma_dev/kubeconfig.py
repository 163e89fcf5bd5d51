"""Writes self-contained kubeconfig files (credentials embedded, mode 0600).

Embedding the CA and credentials keeps a kubeconfig valid when copied or mounted elsewhere
(e.g. handed to the operator process under test); 0600 because it holds a credential.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def _write(path: Path, user: dict[str, str], *, server: str, ca_file: Path, name: str) -> Path:
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "atoma-dev",
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_file)},
            }
        ],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": "atoma-dev", "user": name}}],
        "current-context": name,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    return path


def write_cert_kubeconfig(
    path: Path, *, server: str, ca_file: Path, cert_file: Path, key_file: Path, name: str
) -> Path:
    """A kubeconfig authenticating with a client certificate."""
    user = {"client-certificate-data": _b64(cert_file), "client-key-data": _b64(key_file)}
    return _write(path, user, server=server, ca_file=ca_file, name=name)


def write_token_kubeconfig(
    path: Path, *, server: str, ca_file: Path, token: str, name: str
) -> Path:
    """A kubeconfig authenticating with a bearer token (e.g. a ServiceAccount token)."""
    return _write(path, {"token": token}, server=server, ca_file=ca_file, name=name)
