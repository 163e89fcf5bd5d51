"""The operator's chain gateway: `ChainGateway` on pysui's async gRPC client.

Transactions are built offline (`txbuild`) so their digest is known before sending;
the node is only asked to simulate, execute and look things up. Every failure comes
out typed (`errors`): transport trouble is `ChainUnavailable`, a refusal before
execution is `TransactionRejected`, an unknown transaction or object is `None`.
"""

from __future__ import annotations

import base64
import binascii
import logging
import ssl
import tempfile
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NoReturn

import grpclib.exceptions
import h2.exceptions
from grpclib.client import Channel
from grpclib.const import Status
from pysui import PysuiConfiguration
from pysui.sui.sui_common.config.confgroup import GroupProtocol, NetworkType
from pysui.sui.sui_grpc import pgrpc_requests as rq
from pysui.sui.sui_grpc.pgrpc_clients import GrpcProtocolClient
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as pb

from atoma_operator import metrics
from atoma_operator.sui.effects import event_from_message, outcome_from_executed
from atoma_operator.sui.errors import (
    ChainError,
    ChainUnavailable,
    EventCursorRejected,
    EventsNotServed,
    TransactionRejected,
    classify_rejection,
)
from atoma_operator.sui.keys import Signer
from atoma_operator.sui.txbuild import (
    build_transaction_data,
    normalize_id,
    transaction_digest,
)
from atoma_operator.sui.types import (
    ChainEvent,
    EventPage,
    GasCoin,
    MoveCall,
    ObjectRef,
    SharedObjectArg,
    SignedTransaction,
    TxOutcome,
)

log = logging.getLogger(__name__)

SUI_COIN_TYPE = "0x2::coin::Coin<0x2::sui::SUI>"
_EFFECTS_MASK = [
    "effects.status",
    "effects.gas_used",
    "effects.gas_object",
    "effects.changed_objects.object_id",
    "effects.changed_objects.output_version",
    "effects.changed_objects.output_digest",
    "effects.epoch",
    "effects.transaction_digest",
]
"""The effects fields `sui.effects` reads: not the BCS copy, dependencies or unchanged
objects, which a full `effects` carries and which cost decoding on every transaction."""
_TX_MASK = [
    "digest",
    "checkpoint",
    *_EFFECTS_MASK,
    "events.events.event_type",
    "events.events.json",
]
_SIMULATE_MASK = [
    "transaction." + m
    for m in ("digest", "effects.status", "effects.gas_used", "effects.transaction_digest")
]
"""A simulation is asked for its verdict and gas only (events and objects are unused)."""
_EVENT_MASK = ["event_type", "json", "transaction_digest", "event_index", "checkpoint"]
_RETRYABLE = {
    Status.UNAVAILABLE,
    Status.DEADLINE_EXCEEDED,
    Status.RESOURCE_EXHAUSTED,
    Status.INTERNAL,
    Status.UNKNOWN,
    Status.CANCELLED,
    Status.ABORTED,
}
_TRANSPORT_ERRORS = (
    OSError,
    TimeoutError,
    grpclib.exceptions.StreamTerminatedError,
    grpclib.exceptions.ProtocolError,
    h2.exceptions.ProtocolError,
    ssl.SSLError,
)


class _RpcFailure(Exception):
    """A gRPC status other than OK, before it is mapped for one method."""

    def __init__(self, status: Status | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _DropTracebacks(logging.Filter):
    """pysui logs a full traceback at ERROR for every failed call; we report them typed."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Traceback")


_pysui_logging_configured = False


def quiet_pysui_logging() -> None:
    """Keep pysui's gRPC client from printing tracebacks and per-call chatter."""
    global _pysui_logging_configured
    if _pysui_logging_configured:
        return
    grpc_log = logging.getLogger("pgrpc_client")
    grpc_log.setLevel(logging.WARNING)
    grpc_log.addFilter(_DropTracebacks())
    _pysui_logging_configured = True


def parse_endpoint(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) from http://host:port (plaintext) or https://host[:port] (TLS)."""
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"Sui endpoint must be http://host:port or https://host[:port]: {url!r}")
    tls = parsed.scheme == "https"
    try:
        port = parsed.port
    except ValueError:
        raise ValueError(f"Sui endpoint has an invalid port: {url!r}") from None
    if port is None:
        if not tls:
            raise ValueError(f"a plaintext Sui endpoint needs a port: {url!r}")
        port = 443
    return parsed.hostname, port, tls


def tls_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """Verifying client context for https:// endpoints: the system's trust store, or only
    `ca_file` (a PEM bundle) when given. Certificates and host names are always checked."""
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(ca_file) if ca_file else None
        )
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load the Sui CA bundle {ca_file}: {exc}") from None
    context.set_alpn_protocols(["h2"])  # gRPC runs over HTTP/2
    return context


def _pysui_config(url: str) -> PysuiConfiguration:
    """A key-less in-memory pysui configuration naming the endpoint.

    pysui insists on writing PysuiConfig.json; it goes to a throw-away folder.
    """
    with tempfile.TemporaryDirectory(prefix="atoma-pysui-") as folder:
        cfg = PysuiConfiguration.initialize_config(
            in_folder=Path(folder), init_groups=[{"name": "atoma", "make_active": True}]
        )
        cfg.active_group.group_protocol = GroupProtocol.GRPC
        cfg.new_profile(
            profile_name="node",
            url=url,
            network_type=NetworkType.LOCAL,
            make_active=True,
            persist=False,
        )
    config: PysuiConfiguration = cfg
    return config


class SuiGateway:
    """`ChainGateway` over gRPC (sui.rpc.v2) for one signer."""

    def __init__(
        self,
        url: str,
        signer: Signer,
        *,
        request_timeout: float = 10.0,
        execute_timeout: float = 120.0,
        stream_timeout: float = 60.0,
        ca_file: Path | None = None,
    ) -> None:
        quiet_pysui_logging()
        host, port, tls = parse_endpoint(url)
        self._url = url
        self._signer = signer
        self._request_timeout = request_timeout
        self._execute_timeout = execute_timeout
        self._stream_timeout = stream_timeout  # a ListEvents scan can take ~5 s server-side
        self._client = GrpcProtocolClient(pysui_config=_pysui_config(f"http://{host}:{port}"))
        # pysui always opens TLS; open the channel ourselves so http:// is plaintext.
        self._client._channel.close()
        self._client._channel = Channel(
            host=host, port=port, ssl=tls_context(ca_file) if tls else None
        )
        self._shared_versions: dict[str, int] = {}

    @property
    def sender(self) -> str:
        return self._signer.address

    @property
    def url(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"SuiGateway(url={self._url!r}, sender={self.sender})"

    async def close(self) -> None:
        await self._client.close()

    # -- transport ---------------------------------------------------------------------

    async def _call(self, request: Any, *, deadline_s: float | None = None) -> Any:
        """One unary call; transport errors become ChainUnavailable, statuses _RpcFailure."""
        what = type(request).__name__
        metrics.CHAIN_RPC_CALLS.labels(what).inc()
        try:
            result = await self._client.execute_grpc_request(
                request=request, timeout=deadline_s or self._request_timeout
            )
        except _TRANSPORT_ERRORS as exc:
            _unavailable(what, exc)
        if result.is_ok():
            return result.result_data
        _raise_failure(what, result.result_string)

    def _check_retryable(self, what: str, failure: _RpcFailure) -> None:
        """UNAVAILABLE, a deadline and the like: the node may still act on the request (on
        execute: no finality within its 90 s wait, it keeps trying): outcome unknown."""
        if failure.status in _RETRYABLE or failure.status is None:
            raise ChainUnavailable(f"{what}: {_status_name(failure.status)}: {failure.message}")

    # -- reads ---------------------------------------------------------------------------

    async def _epoch(self) -> pb.Epoch:
        try:
            response = await self._call(rq.GetEpoch(field_mask=["epoch", "reference_gas_price"]))
        except _RpcFailure as failure:
            self._check_retryable("GetEpoch", failure)
            raise ChainError(f"GetEpoch: {failure.message}") from None
        if response is None or response.epoch is None:
            raise ChainError("GetEpoch returned no epoch")
        epoch: pb.Epoch = response.epoch
        return epoch

    async def reference_gas_price(self) -> int:
        epoch = await self._epoch()
        if not epoch.reference_gas_price:
            raise ChainError("the node reported no reference gas price")
        return int(epoch.reference_gas_price)

    async def current_epoch(self) -> int:
        epoch = await self._epoch()
        if epoch.epoch is None:
            raise ChainError("the node reported no epoch number")
        return int(epoch.epoch)

    async def _object(self, object_id: str, mask: list[str]) -> pb.Object | None:
        oid = normalize_id(object_id)
        try:
            response = await self._call(rq.GetObject(object_id=oid, field_mask=mask))
        except _RpcFailure as failure:
            if failure.status is Status.NOT_FOUND:
                return None
            self._check_retryable("GetObject", failure)
            raise ChainError(f"GetObject {oid}: {failure.message}") from None
        obj: pb.Object | None = response.object if response is not None else None
        return obj

    async def get_object_ref(self, object_id: str) -> ObjectRef | None:
        obj = await self._object(object_id, ["object_id", "version", "digest"])
        if obj is None or obj.version is None or not obj.digest:
            return None
        return ObjectRef(normalize_id(obj.object_id or object_id), int(obj.version), obj.digest)

    async def get_object_json(self, object_id: str) -> dict[str, Any] | None:
        obj = await self._object(object_id, ["object_id", "version", "object_type", "json"])
        if obj is None or obj.json is None:
            return None
        value = obj.json.to_dict()
        if not isinstance(value, dict):
            raise ChainError(f"object {object_id} JSON is not a struct")
        return value

    async def get_object_type(self, object_id: str) -> str | None:
        """The object's Move type, e.g. "0x…::db::AtomaDb" (its address = defining package)."""
        obj = await self._object(object_id, ["object_id", "object_type"])
        if obj is None or not obj.object_type:
            return None
        return str(obj.object_type)

    async def shared_object(self, object_id: str, *, mutable: bool) -> SharedObjectArg:
        oid = normalize_id(object_id)
        if oid not in self._shared_versions:
            obj = await self._object(oid, ["object_id", "owner"])
            if obj is None:
                raise ChainError(f"shared object {oid} not found")
            owner = obj.owner
            if owner is None or owner.kind is not pb.OwnerOwnerKind.SHARED or owner.version is None:
                raise ChainError(f"object {oid} is not a shared object")
            self._shared_versions[oid] = int(owner.version)
        return SharedObjectArg(oid, self._shared_versions[oid], mutable)

    async def list_gas_coins(self, owner: str | None = None) -> list[GasCoin]:
        address = normalize_id(owner or self.sender)
        coins: list[GasCoin] = []
        token: bytes | None = None
        while True:
            try:
                response = await self._call(
                    rq.GetGas(
                        owner=address,
                        field_mask=["object_id", "version", "digest", "balance"],
                        page_size=200,
                        page_token=token,
                    )
                )
            except _RpcFailure as failure:
                self._check_retryable("ListOwnedObjects", failure)
                raise ChainError(f"ListOwnedObjects {address}: {failure.message}") from None
            for obj in response.objects:
                if obj.object_id and obj.version is not None and obj.digest:
                    ref = ObjectRef(normalize_id(obj.object_id), int(obj.version), obj.digest)
                    coins.append(GasCoin(ref, int(obj.balance or 0)))
            token = response.next_page_token
            if not token:
                return coins

    # -- transactions ------------------------------------------------------------------

    async def build_and_sign(
        self, call: MoveCall, *, gas_coin: ObjectRef, gas_price: int, gas_budget: int
    ) -> SignedTransaction:
        tx_bytes = build_transaction_data(
            sender=self.sender,
            call=call,
            gas_coin=gas_coin,
            gas_price=gas_price,
            gas_budget=gas_budget,
        )
        tx_b64 = base64.b64encode(tx_bytes).decode()
        return SignedTransaction(
            digest=transaction_digest(tx_bytes),
            tx_bytes_b64=tx_b64,
            signatures=(self._signer.sign_tx(tx_b64),),
            gas_coin=gas_coin,
            gas_budget=gas_budget,
            gas_price=gas_price,
        )

    async def simulate(self, tx: SignedTransaction) -> TxOutcome:
        request = rq.SimulateTransaction(
            transaction=tx.tx_bytes_b64,
            checks_enabled=True,
            gas_selection=False,
            field_mask=_SIMULATE_MASK,
        )
        try:
            response = await self._call(request)
        except _RpcFailure as failure:
            self._reject_or_raise("SimulateTransaction", failure)
        executed = response.transaction if response is not None else None
        if executed is None:
            raise ChainError("SimulateTransaction returned no transaction")
        return outcome_from_executed(executed, digest=tx.digest, gas_coin_id=tx.gas_coin.object_id)

    async def execute(self, tx: SignedTransaction) -> TxOutcome:
        request = rq.ExecuteTransaction(
            tx_bytestr=tx.tx_bytes_b64, sig_array=list(tx.signatures), field_mask=_TX_MASK
        )
        try:
            executed = await self._call(request, deadline_s=self._execute_timeout)
        except _RpcFailure as failure:
            self._reject_or_raise("ExecuteTransaction", failure)
        if executed is None:
            raise ChainError("ExecuteTransaction returned no transaction")
        outcome = outcome_from_executed(
            executed, digest=tx.digest, gas_coin_id=tx.gas_coin.object_id
        )
        if outcome.digest != tx.digest:
            raise ChainError(f"the node executed {outcome.digest}, expected {tx.digest}")
        return outcome

    def _reject_or_raise(self, what: str, failure: _RpcFailure) -> NoReturn:
        self._check_retryable(what, failure)
        code = failure.status.name if failure.status is not None else None
        raise TransactionRejected(classify_rejection(failure.message, code), failure.message)

    async def get_transaction(self, digest: str) -> TxOutcome | None:
        try:
            response = await self._call(rq.GetTransaction(digest=digest, field_mask=_TX_MASK))
        except _RpcFailure as failure:
            if failure.status is Status.NOT_FOUND:
                return None
            self._check_retryable("GetTransaction", failure)
            raise ChainError(f"GetTransaction {digest}: {failure.message}") from None
        executed = response.transaction if response is not None else None
        if executed is None:
            return None
        return outcome_from_executed(executed, digest=digest)

    # -- events --------------------------------------------------------------------------

    async def ledger_bounds(self) -> tuple[int, int]:
        """(lowest available checkpoint, latest checkpoint) from GetServiceInfo."""
        try:
            info = await self._call(rq.GetServiceInfo())
        except _RpcFailure as failure:
            self._check_retryable("GetServiceInfo", failure)
            raise ChainError(f"GetServiceInfo: {failure.message}") from None
        if info is None or info.checkpoint_height is None:
            raise ChainError("GetServiceInfo returned no checkpoint height")
        return int(info.lowest_available_checkpoint or 0), int(info.checkpoint_height)

    async def list_events(
        self,
        *,
        event_type_prefix: str,
        after: str | None,
        limit: int,
        start_checkpoint: int | None = None,
    ) -> EventPage:
        """Events whose type starts with the prefix, in ledger order, after the cursor
        (or from `start_checkpoint`, inclusive, when there is no cursor yet).

        `next_cursor` is the last watermark the node sent (scan progress counts even when
        no event matched), or `after` unchanged when it sent none. `at_tip` is False after
        ITEM_LIMIT and SCAN_LIMIT: both mean "more may follow, ask again at once".
        """
        server_filter, wanted = _event_filter(event_type_prefix)
        try:
            after_raw = _decode_cursor(after) if after else None
        except ValueError as exc:
            raise EventCursorRejected("invalid", str(exc)) from None
        options = pb.QueryOptions(
            limit=limit,
            after=after_raw,
            ordering=pb.Ordering.ASCENDING,
        )
        request = rq.ListEvents(
            field_mask=_EVENT_MASK,
            start_checkpoint=start_checkpoint if after_raw is None else None,
            event_filter=pb.EventFilter(
                terms=[
                    pb.EventTerm(
                        literals=[
                            pb.EventLiteral(event_type=pb.EventTypeFilter(event_type=server_filter))
                        ]
                    )
                ]
            ),
            options=options,
        )
        events: list[ChainEvent] = []
        cursor: bytes | None = None
        end: pb.QueryEndReason | None = None
        try:
            async for frame in self._stream(request, deadline_s=self._stream_timeout):
                if frame.watermark is not None and frame.watermark.cursor:
                    cursor = frame.watermark.cursor
                if frame.event is not None:
                    event = event_from_message(frame.event)
                    if _normalize_type(event.type).startswith(wanted):
                        events.append(event)
                if frame.end is not None:
                    end = frame.end.reason
        except _RpcFailure as failure:
            _raise_events_failure(
                failure, has_position=after_raw is not None or start_checkpoint is not None
            )
            self._check_retryable("ListEvents", failure)
            raise ChainError(f"ListEvents: {failure.message}") from None
        return EventPage(
            events=tuple(events),
            next_cursor=_encode_cursor(cursor) if cursor else after,
            at_tip=end not in (pb.QueryEndReason.ITEM_LIMIT, pb.QueryEndReason.SCAN_LIMIT),
        )

    async def _stream(self, request: Any, *, deadline_s: float | None = None) -> AsyncIterator[Any]:
        what = type(request).__name__
        metrics.CHAIN_RPC_CALLS.labels(what).inc()
        try:
            result = await self._client.execute_grpc_request(
                request=request, timeout=deadline_s or self._request_timeout
            )
        except _TRANSPORT_ERRORS as exc:
            _unavailable(what, exc)
        if not result.is_ok():
            _raise_failure(what, result.result_string)
        try:
            async for frame in result.result_data:
                yield frame
        except grpclib.exceptions.GRPCError as exc:
            _count_error(what, exc.status.name)
            raise _RpcFailure(exc.status, exc.message or "") from None
        except _TRANSPORT_ERRORS as exc:
            _unavailable(what, exc)


# -- helpers -------------------------------------------------------------------------------


def _count_error(what: str, code: str) -> None:
    metrics.CHAIN_RPC_ERRORS.labels(what, code).inc()


def _unavailable(what: str, exc: BaseException) -> NoReturn:
    # as gRPC itself reports them: no connection is UNAVAILABLE, our timeout DEADLINE_EXCEEDED
    _count_error(what, "DEADLINE_EXCEEDED" if isinstance(exc, TimeoutError) else "UNAVAILABLE")
    reason = str(exc) or type(exc).__name__
    raise ChainUnavailable(f"{what}: node unreachable: {reason}") from None


def _raise_failure(what: str, result_string: object) -> NoReturn:
    """pysui hands a failed call back as SuiRpcResult(False, exception args)."""
    if isinstance(result_string, tuple) and result_string and isinstance(result_string[0], Status):
        _count_error(what, result_string[0].name)
        message = result_string[1] if len(result_string) > 1 else ""
        raise _RpcFailure(result_string[0], str(message or ""))
    _count_error(what, "UNKNOWN")  # no gRPC status: pysui failed before or after the call
    if isinstance(result_string, tuple | list):
        text = " ".join(str(part) for part in result_string)
    else:
        text = str(result_string)
    if "CERTIFICATE_VERIFY_FAILED" in text:  # nothing reached the node; retrying won't help
        raise ChainError(
            f"{what}: the node's TLS certificate is not trusted (set ATOMA_SUI_CA_FILE to "
            f"the CA bundle that signed it): {text}"
        )
    raise ChainError(f"{what}: {text}")


def _raise_events_failure(failure: _RpcFailure, *, has_position: bool) -> None:
    """ListEvents' own refusals, before the generic mapping (sui-network.md)."""
    text = failure.message.lower()
    if failure.status is Status.UNAVAILABLE and "indexes are disabled" in text:
        raise EventsNotServed(f"ListEvents: {failure.message}")
    if failure.status is Status.OUT_OF_RANGE:
        raise EventCursorRejected("out_of_range", failure.message)
    if failure.status is Status.INVALID_ARGUMENT and has_position:
        raise EventCursorRejected("invalid", failure.message)


def _status_name(status: Status | None) -> str:
    return status.name if status is not None else "transport error"


def _encode_cursor(cursor: bytes) -> str:
    return base64.urlsafe_b64encode(cursor).decode()


def _decode_cursor(cursor: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(cursor.encode())
    except (binascii.Error, ValueError):
        raise ValueError(f"not an event cursor from this gateway: {cursor!r}") from None


def _normalize_type(type_str: str) -> str:
    """Long-form the leading address of a Move type ("0x2::x::Y" == "0x00…02::x::Y")."""
    head, sep, rest = type_str.partition("::")
    try:
        return normalize_id(head) + sep + rest
    except ValueError:
        return type_str


def _event_filter(prefix: str) -> tuple[str, str]:
    """(filter sent to the node, prefix checked here) for an event type prefix.

    The node matches whole path segments (address, address::module, or a type name),
    so it gets the address::module part and the rest of the prefix is checked here.
    """
    wanted = _normalize_type(prefix)
    parts = wanted.split("::")
    return "::".join(p for p in parts[:2] if p), wanted
