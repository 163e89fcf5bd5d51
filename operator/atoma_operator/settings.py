"""Operator-wide settings, read from environment variables and an optional mounted file.

Precedence (highest first): constructor arguments, `ATOMA_*` environment variables, the
YAML file named by `ATOMA_CONFIG_FILE` (the Helm chart mounts its ConfigMap there),
defaults. The signing key is never a setting value: only the path of a mounted file
(`ATOMA_KEY_FILE`) or, for local development, `ATOMA_SIGNING_KEY` held as a SecretStr so
it cannot leak through repr. pydantic's ValidationError repeats the input values (the
model validator's input is every setting, key included), so `Settings()` replaces it
with `SettingsInvalid`, which names fields and rules only.
"""

from __future__ import annotations

import logging
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from atoma_operator.atoma.hashing import ProofScheme
from atoma_operator.statedb import SslMode

OBJECT_ID_PATTERN = r"^0x[0-9a-f]{64}$"
ObjectIdStr = Annotated[str, Field(pattern=OBJECT_ID_PATTERN)]

DEFAULT_GAS_BUDGET = 50_000_000
"""The node software's default budget (MIST), kept so that behaviour matches the daemon."""


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class LogLevel(StrEnum):
    """The operator's log level (ATOMA_LOG_LEVEL), written in any case."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"

    @property
    def number(self) -> int:
        """The `logging` module's number for this level."""
        return logging.getLevelNamesMapping()[self.value]


class NodeBadge(BaseModel):
    """A NodeBadge owned by the operator's address, and the node small id it proves."""

    object_id: ObjectIdStr
    node_small_id: Annotated[int, Field(ge=0)]


class SettingsInvalid(ValueError):
    """The operator's settings are invalid. The message names fields and rules, never values."""


def describe_errors(exc: ValidationError) -> str:
    """One line per error: `field: rule`, without the input (which may be the key)."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(part) for part in error["loc"]) or "settings"
        lines.append(f"{where}: {error['msg']}")
    return "; ".join(lines)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ATOMA_",
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
    )

    # --- chain -----------------------------------------------------------------------------
    sui_rpc_url: str = Field(
        default="http://127.0.0.1:9000",
        description="Sui full-node gRPC endpoint; https:// opens TLS, http:// a plaintext channel.",
    )
    sui_request_timeout_seconds: float = Field(default=30.0, gt=0)
    sui_ca_file: Path | None = Field(
        default=None,
        description="PEM bundle of CAs trusted for an https:// endpoint instead of the "
        "system's (a node with a private CA).",
    )
    sui_execute_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        description="ExecuteTransaction deadline: longer than the node's own 90 s finality "
        "wait, so a slow success is not turned into an unknown outcome.",
    )
    sui_stream_timeout_seconds: float = Field(
        default=60.0, gt=0, description="ListEvents deadline (a scan takes ~5 s on the node)."
    )
    package_id: ObjectIdStr | None = Field(
        default=None,
        description="Atoma package id that Move calls target: the latest version after upgrades.",
    )
    type_origin_package_id: ObjectIdStr | None = Field(
        default=None,
        description="Package id that defined the db types (ticket keys, event types): the "
        "original id for types of the first version. None: read from the AtomaDb object's type.",
    )
    atoma_db_id: ObjectIdStr | None = Field(default=None, description="AtomaDb shared object id.")
    badges: list[NodeBadge] = Field(default_factory=list)

    # --- signing key (never logged) --------------------------------------------------------
    key_file: Path | None = Field(default=None, description="Mounted file holding the key.")
    signing_key: SecretStr | None = Field(default=None, description="Dev only: the key itself.")
    key_derivation_path: str | None = None

    proof_scheme: ProofScheme = Field(
        default=ProofScheme.CONTRACT,
        description="Committed-proof scheme when a resource names none: Contract is what "
        "the contract's final check recomputes; NodeSoftware reproduces atoma-node.",
    )

    # --- node state database (proofSource: StateDatabase) ------------------------------------
    state_database_dsn: SecretStr | None = Field(
        default=None,
        description="postgresql:// DSN of the node's state database (a read-only role); "
        "from a Secret. Unset: resources with proofSource StateDatabase fail with "
        "InvalidProofInput.",
    )
    state_database_sslmode: SslMode = Field(
        default=SslMode.PREFER, description="libpq sslmode: disable ... verify-full."
    )
    state_database_root_cert: Path | None = Field(
        default=None, description="CA bundle for verify-ca / verify-full (a mounted file)."
    )
    state_database_max_connections: int = Field(default=4, ge=1, le=64)

    # --- gas -------------------------------------------------------------------------------
    gas_budget: int = Field(default=DEFAULT_GAS_BUDGET, ge=1_000)
    gas_price: int | None = Field(default=None, ge=1, description="None: reference gas price.")
    gas_wait_seconds: float = Field(
        default=30.0, gt=0, description="How long a unit waits for a busy gas coin."
    )
    gas_coins: list[ObjectIdStr] = Field(
        default_factory=list,
        description="Allow-list of the key's SUI coins that form the gas pool for resources "
        "that name no coin; empty: every SUI coin of the key.",
    )
    expiry_confirmations: int = Field(
        default=3,
        ge=1,
        description="Lookups in a row that must miss a recorded transaction whose gas coin "
        "moved on before it is called expired and rebuilt.",
    )
    expiry_window_seconds: float = Field(
        default=20.0,
        ge=0,
        description="...and the time those lookups must span (a node behind a load balancer "
        "can lag for a moment, not for this long).",
    )

    # --- running ---------------------------------------------------------------------------
    concurrency: int = Field(default=8, ge=1, le=512, description="Max concurrent submissions.")
    events: Literal["all", "warnings"] = Field(
        default="all",
        description="Which Kubernetes Events to post: all (also one Normal Event per "
        "resource and outcome, e.g. Submitted), or warnings only (at scale: each Event is "
        "an API write; status, metrics and logs still show every success).",
    )
    reconcile_workers: int = Field(
        default=64,
        ge=1,
        le=4096,
        description="Resources reconciled at once (a pass mostly waits on the chain).",
    )
    namespaces: list[str] = Field(default_factory=list, description="Empty: all namespaces.")
    operator_namespace: str = Field(default="default", validation_alias="POD_NAMESPACE")
    state_configmap: str = "atoma-operator-state"
    leader_election: bool = Field(
        default=True, description="Hold a Lease before acting: one active operator at a time."
    )
    leader_lease: str = Field(default="atoma-operator", description="Lease name (operator ns).")
    leader_identity: str | None = Field(
        default=None, description="Defaults to POD_NAME or the hostname (unique per pod)."
    )
    ttl_seconds_after_finished: float | None = Field(
        default=None,
        ge=0,
        description="Delete final resources this long after they finished (off by default; "
        "a resource's spec.ttlSecondsAfterFinished overrides it). Needs the delete verb.",
    )
    follower_interval_seconds: float = Field(default=2.0, gt=0)
    follower_page_size: int = Field(default=100, ge=1, le=1000)
    follower_start_checkpoint: int | None = Field(
        default=None,
        ge=0,
        description="Where the follower starts reading events when it has no saved cursor. "
        "None: the current checkpoint, plus one ticket read of every open resource.",
    )
    retry_base_seconds: float = Field(default=5.0, gt=0)
    retry_max_seconds: float = Field(default=300.0, gt=0)
    policy_enforced: bool = Field(
        default=True,
        description="Refuse (Stalled, NotPermitted) resources no SettlementPolicy permits. "
        "false: no checks, for local development with the stand-in only.",
    )
    proof_input_wait_seconds: float = Field(
        default=600.0,
        gt=0,
        description="How long a resource waits for a referenced ConfigMap/Secret to appear "
        "before it is Stalled with InvalidProofInput.",
    )
    metrics_port: int = Field(default=8080, ge=0, le=65535)
    health_port: int = Field(default=8081, ge=0, le=65535)
    log_format: LogFormat = LogFormat.TEXT
    log_level: LogLevel = Field(
        default=LogLevel.INFO,
        description="DEBUG, INFO, WARNING or ERROR, in any case. Chatty libraries (the "
        "Kubernetes client, urllib3, gRPC/HTTP2) stay at WARNING or above.",
    )

    def __init__(self, **values: Any) -> None:
        # The replacement is raised outside the `except` block: nothing input-bearing is
        # chained to it (tracebacks print __context__ too).
        error: SettingsInvalid
        try:
            super().__init__(**values)
            return
        except ValidationError as exc:
            error = SettingsInvalid(f"invalid operator settings: {describe_errors(exc)}")
        except SettingsError as exc:  # a source could not parse a value (e.g. JSON)
            error = SettingsInvalid(f"invalid operator settings: {exc}")
        except yaml.YAMLError as exc:  # position only: the file's text is not repeated
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            error = SettingsInvalid(f"ATOMA_CONFIG_FILE is not valid YAML{where}")
        except OSError as exc:
            error = SettingsInvalid(f"cannot read ATOMA_CONFIG_FILE: {exc.strerror}")
        raise error

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level_in_any_case(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_key_source(self) -> Settings:
        if self.key_file is not None and self.signing_key is not None:
            raise ValueError("set either ATOMA_KEY_FILE or ATOMA_SIGNING_KEY, not both")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = os.environ.get("ATOMA_CONFIG_FILE")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    def badge_for(self, node_small_id: int) -> NodeBadge | None:
        return next((b for b in self.badges if b.node_small_id == node_small_id), None)
