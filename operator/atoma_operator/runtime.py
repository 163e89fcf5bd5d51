"""Everything the handlers share for the life of the operator process.

Built once at start-up (from settings: gateway, signer, gas pool, AtomaDb refs) and
torn down at clean-up; handlers reach it through kopf's memo.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from atoma_operator import metrics, statedb
from atoma_operator.kube import Kube, NotFound
from atoma_operator.policy import PolicyGate, defaults_from
from atoma_operator.reconcile.context import KeyedLocks, ReconcileContext
from atoma_operator.reconcile.holds import HoldBook
from atoma_operator.reconcile.tickets import TicketReader
from atoma_operator.registry import StackRegistry
from atoma_operator.settings import Settings
from atoma_operator.sui.gas import GasCoinManager
from atoma_operator.sui.gateway import SuiGateway
from atoma_operator.sui.keys import KeyLoadError, load_signer, parse_signer


class ConfigurationError(Exception):
    """Settings that make running impossible; the message says which and why."""


@dataclass
class Runtime:
    settings: Settings
    gateway: SuiGateway
    kube: Kube
    ctx: ReconcileContext
    registry: StackRegistry
    state_db: statedb.StackHashReader | None = None

    @classmethod
    async def create(cls, settings: Settings, kube: Kube | None = None) -> Runtime:
        if settings.package_id is None or settings.atoma_db_id is None:
            raise ConfigurationError("ATOMA_PACKAGE_ID and ATOMA_ATOMA_DB_ID must be set")
        try:
            if settings.key_file is not None:
                signer = load_signer(
                    path=settings.key_file, derivation_path=settings.key_derivation_path
                )
            elif settings.signing_key is not None:
                signer = parse_signer(
                    settings.signing_key.get_secret_value(),
                    derivation_path=settings.key_derivation_path,
                )
            else:
                raise ConfigurationError(
                    "no signing key: set ATOMA_KEY_FILE (or ATOMA_SIGNING_KEY)"
                )
        except KeyLoadError as exc:
            raise ConfigurationError(str(exc)) from None
        gateway = SuiGateway(
            settings.sui_rpc_url,
            signer,
            request_timeout=settings.sui_request_timeout_seconds,
            execute_timeout=settings.sui_execute_timeout_seconds,
            stream_timeout=settings.sui_stream_timeout_seconds,
            ca_file=settings.sui_ca_file,
        )
        kube = kube or Kube()
        holds = HoldBook()
        gas = GasCoinManager(
            gateway, owner=signer.address, allow=settings.gas_coins, held=holds.is_held
        )
        holds.on_release(gas.wake)
        tickets = TicketReader(
            gateway,
            package_id=settings.package_id,
            db_id=settings.atoma_db_id,
            type_origin=settings.type_origin_package_id,
        )

        async def read_value(namespace: str, kind: str, name: str, key: str) -> bytes:
            try:
                return await kube.read_config_bytes(namespace, kind=kind, name=name, key=key)
            except NotFound as exc:
                raise LookupError(str(exc)) from None

        state_db = statedb.from_settings(settings)
        ctx = ReconcileContext(
            read_stack_hash=state_db.total_hash if state_db is not None else None,
            gateway=gateway,
            gas=gas,
            settings=settings,
            tickets=tickets,
            read_value=read_value,
            submit_slots=asyncio.Semaphore(settings.concurrency),
            locks=KeyedLocks(),
            holds=holds,
        )
        if settings.policy_enforced:
            ctx.policy = PolicyGate(kube.api_client, defaults_from(settings))
        registry = StackRegistry(
            holds, retain_finished=settings.ttl_seconds_after_finished is not None
        )
        # /metrics reads resource counts and the gas pool from here on every scrape
        metrics.track(conditions=registry.condition_counts, gas=gas.stats)
        return cls(settings, gateway, kube, ctx, registry, state_db)

    async def close(self) -> None:
        if self.state_db is not None:
            await self.state_db.close()
        await self.gateway.close()
        await self.kube.close()
