"""`LocalSui`: the stand-in node as one object — chain, Atoma module, faults, servers.

Tests use it in-process (admin methods are plain Python); `admin.py` exposes the same
methods over HTTP for out-of-process use; `__main__` runs it as a program.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grpclib.server import Server

from . import bcs
from .atoma_runtime import AtomaRuntime, new_model
from .crypto import blake2b256
from .faults import Faults
from .ledger import DEFAULT_REFERENCE_GAS_PRICE, Ledger
from .objects import StoredObject
from .service import services

log = logging.getLogger(__name__)

DEFAULT_SAMPLING_PROBABILITY = 0.01


def _derived(seed: int, label: str) -> str:
    return "0x" + blake2b256(f"sui-localnet/{seed}/{label}".encode()).hex()


@dataclass(frozen=True)
class BadgeInfo:
    object_id: str
    node_small_id: int
    owner: str


class LocalSui:
    """A single-process Sui full node stand-in with the Atoma package deployed."""

    def __init__(
        self,
        *,
        seed: int = 0,
        reference_gas_price: int = DEFAULT_REFERENCE_GAS_PRICE,
        sampling_probability: float = DEFAULT_SAMPLING_PROBABILITY,
        state_file: Path | None = None,
        upgraded_package: bool = False,
        strict_locks: bool = False,
        shared_latency: float = 0.0,
        shared_latency_jitter: float = 0.0,
        latency_seed: int | None = None,
    ) -> None:
        self.seed = seed
        self.upgraded_package = upgraded_package
        self.state_file = state_file
        self.faults = Faults()
        self.ledger = Ledger(
            reference_gas_price=reference_gas_price,
            chain_id=bcs_b58(blake2b256(f"sui-localnet-chain/{seed}".encode())),
        )
        self.ledger.strict_locks = strict_locks
        self.set_latency(
            mean=shared_latency,
            jitter=shared_latency_jitter,
            seed=seed if latency_seed is None else latency_seed,
        )
        self.package_id = _derived(seed, "atoma-package")
        self.atoma_db_id = _derived(seed, "atoma-db")
        self.runtime = AtomaRuntime(
            new_model(
                self.package_id,
                self.atoma_db_id,
                seed=seed,
                sampling_probability=sampling_probability,
            )
        )
        self.call_package_id = self.package_id
        """The package id clients call. In upgraded mode a second id (as after a Sui package
        upgrade): calls target it, while object, event and dynamic-field key types keep the
        original `package_id` (the types' defining id), and Event.package_id names the
        called one."""
        self._register_packages()
        if state_file is not None and state_file.exists():
            self._load(state_file)
        else:
            self._mirror(self.atoma_db_id)
        self.ledger.listeners.append(self._save_soon)
        self._grpc: Server | None = None
        self._admin: Any = None
        self.host = "127.0.0.1"
        self.port = 0
        self.admin_port: int | None = None
        self.tls = False

    def _register_packages(self) -> None:
        if self.upgraded_package:
            self.call_package_id = _derived(self.seed, "atoma-package-upgrade-1")
        self.ledger.runtimes = {self.package_id: self.runtime}
        # Every version of an upgraded package stays callable; both run the same model.
        self.ledger.runtimes[self.call_package_id] = self.runtime

    # --- servers ---------------------------------------------------------------------

    async def start(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_port: int | None = None,
        *,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        """Serve gRPC on `port` (0 = any free port) and, if given, the admin HTTP API.

        `tls` = (certificate chain PEM, key PEM): serve gRPC over TLS (https://), as real
        full nodes do; the admin API stays plain HTTP.
        """
        self.host = host
        self._grpc = Server(services(self.ledger, self.faults))
        context = None
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            context.set_alpn_protocols(["h2"])
            self.tls = True
        await self._grpc.start(host, port, ssl=context)
        listener: Any = self._grpc._server  # grpclib exposes no public bound-address API
        self.port = listener.sockets[0].getsockname()[1]
        if admin_port is not None:
            from .admin import start_admin

            self._admin, self.admin_port = await start_admin(self, host, admin_port)

    async def stop(self) -> None:
        if self._admin is not None:
            await self._admin.cleanup()
            self._admin = None
        if self._grpc is not None:
            self._grpc.close()
            await self._grpc.wait_closed()
            self._grpc = None
        self.save()

    @property
    def grpc_url(self) -> str:
        if self.tls:  # the certificate names localhost, not the bind address
            host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0") else self.host
            return f"https://{host}:{self.port}"
        return f"http://{self.host}:{self.port}"

    @property
    def admin_url(self) -> str | None:
        return None if self.admin_port is None else f"http://{self.host}:{self.admin_port}"

    # --- admin surface -----------------------------------------------------------------

    @property
    def model(self) -> Any:
        return self.runtime.model

    def fund(self, address: str, amount: int, count: int = 1) -> list[StoredObject]:
        """Mint `count` SUI coins of `amount` MIST each for `address`."""
        return [self.ledger.mint_coin(address, amount) for _ in range(count)]

    def create_badge(self, owner: str) -> BadgeInfo:
        badge = self.model.create_node_badge(bcs.normalize_address(owner))
        self._mirror(badge.object_id)
        self._refresh_db()
        return BadgeInfo(badge.object_id, badge.node_small_id, badge.owner)

    def create_stack(
        self,
        *,
        selected_node_id: int,
        num_compute_units: int = 1_000_000,
        price_per_one_million: int = 1_000_000,
        security_level: int = 0,
        owner: str | None = None,
    ) -> int:
        """A stack bought by `owner` and assigned to `selected_node_id`; returns its small id."""
        stack_id: int = self.model.create_stack(
            owner=bcs.normalize_address(owner or "0x0"),
            selected_node_id=selected_node_id,
            num_compute_units=num_compute_units,
            price_per_one_million=price_per_one_million,
            security_level=security_level,
        )
        self._refresh_db()
        return stack_id

    def advance_epoch(self, reference_gas_price: int | None = None) -> int:
        epoch = self.ledger.advance_epoch(reference_gas_price)
        self.model.set_epoch(epoch)
        return epoch

    def set_sampling(
        self,
        *,
        probability: float | None = None,
        seed: int | None = None,
        extra_nodes_count: int | None = None,
    ) -> None:
        self.model.set_sampling(
            probability_permille=None if probability is None else round(probability * 1000),
            extra_nodes_count=extra_nodes_count,
        )
        if seed is not None:
            self.model.rng.seed(seed)
        self._refresh_db()

    def set_latency(
        self, *, mean: float | None = None, jitter: float | None = None, seed: int | None = None
    ) -> dict[str, Any]:
        """Consensus latency for shared-object transactions (`latency.py`); mean 0 = off."""
        self.ledger.shared_latency.configure(mean=mean, jitter=jitter, seed=seed)
        return self.ledger.shared_latency.status()

    def ticket_json(self, stack_small_id: int) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self.model.ticket_json(stack_small_id)
        return result

    def executions(self, digest: str) -> int:
        return self.ledger.execution_counts[digest]

    def counters(self) -> dict[str, Any]:
        return {
            "executions": dict(self.ledger.execution_counts),
            **{
                k: v
                for k, v in self.faults.status().items()
                if k in ("calls", "calls_while_down", "lost_responses")
            },
            "shared_latency": self.ledger.shared_latency.status(),
        }

    def info(self) -> dict[str, Any]:
        db = self.ledger.objects[self.atoma_db_id]
        return {
            "grpc_url": self.grpc_url,
            "admin_url": self.admin_url,
            "chain_id": self.ledger.chain_id,
            "epoch": self.ledger.epoch,
            "reference_gas_price": self.ledger.reference_gas_price,
            "package_id": self.call_package_id,
            "original_package_id": self.package_id,
            "atoma_db_id": self.atoma_db_id,
            "atoma_db_initial_shared_version": db.owner.initial_shared_version,
            "random_id": "0x" + "0" * 63 + "8",
        }

    # --- mirroring model objects into the ledger ---------------------------------------

    def _mirror(self, object_id: str) -> StoredObject:
        found = self.runtime.object_contents(object_id)
        assert found is not None, object_id
        type_name, owner, contents = found
        return self.ledger.create_object(
            owner=owner, type_name=type_name, value=contents, object_id=object_id
        )

    def _refresh_db(self) -> None:
        found = self.runtime.object_contents(self.atoma_db_id)
        assert found is not None
        self.ledger.update_object_value(self.atoma_db_id, found[2])

    # --- snapshot file -------------------------------------------------------------------

    def _save_soon(self) -> None:
        self.save()

    def save(self) -> None:
        if self.state_file is None:
            return
        data = {"ledger": self.ledger.dump(), "atoma": self.model.snapshot(), "seed": self.seed}
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.state_file.parent, prefix=".localnet-")
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, self.state_file)

    def _load(self, path: Path) -> None:
        data = json.loads(path.read_text())
        self.ledger.load(data["ledger"])
        self.runtime.restore(data["atoma"])
        self.package_id = self.runtime.package_id = self.model.package_id
        self.atoma_db_id = self.model.db_object_id
        self._register_packages()
        log.info("restored local Sui state from %s", path)


def bcs_b58(data: bytes) -> str:
    from .crypto import b58encode

    return b58encode(data)
