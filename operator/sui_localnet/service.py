"""grpclib handlers for the `sui.rpc.v2` subset the operator (and pysui) uses.

pysui ships only client stubs, so the server side is written here against grpclib's
`__mapping__` protocol with pysui's own message classes: same paths, same messages,
same status codes as a Sui full node for what is implemented; everything else answers
UNIMPLEMENTED because no handler is registered for it.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import betterproto2
from grpclib.const import Cardinality, Handler, Status
from grpclib.exceptions import GRPCError
from grpclib.server import Stream
from pysui.sui.sui_grpc.suimsgs.google import rpc as grpc_status
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as sp

from . import bcs, proto
from .effects import EventRecord
from .faults import Faults
from .ledger import Ledger, Rejected, type_matches
from .objects import SUI_COIN_TYPE, SUI_TYPE

SERVER_NAME = "sui-localnet-standin/0.1"
DEFAULT_PAGE = 50
MAX_PAGE = 1000
_END = 2**64 - 1
_PROTOCOL_CONFIGS = {
    "max_arguments": "512",
    "max_input_objects": "2048",
    "max_num_transferred_move_object_ids": "2048",
    "max_programmable_tx_commands": "1024",
    "max_pure_argument_size": "16384",
    "max_tx_size_bytes": "131072",
    "max_type_argument_depth": "16",
    "max_type_arguments": "16",
    "max_tx_gas": "50000000000",
    "max_publish_or_upgrade_per_ptb": "5",
}
PROTOCOL_VERSION = 100

Unary = Callable[[Any], Awaitable[betterproto2.Message]]
Streaming = Callable[[Any], AsyncIterator[betterproto2.Message]]


class _Base:
    """Shared plumbing: fault checks, counters, and error mapping for every RPC."""

    SERVICE = ""

    def __init__(self, ledger: Ledger, faults: Faults) -> None:
        self.ledger = ledger
        self.faults = faults

    def _gate(self, method: str) -> None:
        if self.faults.record_call(method):
            raise GRPCError(Status.UNAVAILABLE, "service unavailable (injected fault)")

    def _unary(self, method: str, req: type[Any], resp: type[Any], fn: Unary) -> Handler:
        async def handle(stream: Stream[Any, Any]) -> None:
            request = await stream.recv_message()
            self._gate(method)
            try:
                reply = await fn(request)
            except Rejected as exc:
                raise GRPCError(Status[exc.status], exc.message) from None
            await stream.send_message(reply)

        return Handler(handle, Cardinality.UNARY_UNARY, req, resp)

    def _stream(self, method: str, req: type[Any], resp: type[Any], fn: Streaming) -> Handler:
        async def handle(stream: Stream[Any, Any]) -> None:
            request = await stream.recv_message()
            self._gate(method)
            async for reply in fn(request):
                await stream.send_message(reply)

        return Handler(handle, Cardinality.UNARY_STREAM, req, resp)

    def _path(self, method: str) -> str:
        return f"/sui.rpc.v2.{self.SERVICE}/{method}"


def _object_id(raw: str | None, what: str = "object_id") -> str:
    if not raw:
        raise GRPCError(Status.INVALID_ARGUMENT, f"missing {what}")
    try:
        return bcs.normalize_address(raw)
    except ValueError:
        raise GRPCError(Status.INVALID_ARGUMENT, f"invalid {what}: {raw}") from None


class LedgerService(_Base):
    SERVICE = "LedgerService"

    def __mapping__(self) -> Mapping[str, Handler]:
        u, s, p = self._unary, self._stream, self._path
        return {
            p("GetServiceInfo"): u(
                "GetServiceInfo",
                sp.GetServiceInfoRequest,
                sp.GetServiceInfoResponse,
                self.get_service_info,
            ),
            p("GetObject"): u(
                "GetObject", sp.GetObjectRequest, sp.GetObjectResponse, self.get_object
            ),
            p("BatchGetObjects"): u(
                "BatchGetObjects",
                sp.BatchGetObjectsRequest,
                sp.BatchGetObjectsResponse,
                self.batch_get_objects,
            ),
            p("GetTransaction"): u(
                "GetTransaction",
                sp.GetTransactionRequest,
                sp.GetTransactionResponse,
                self.get_transaction,
            ),
            p("BatchGetTransactions"): u(
                "BatchGetTransactions",
                sp.BatchGetTransactionsRequest,
                sp.BatchGetTransactionsResponse,
                self.batch_get_transactions,
            ),
            p("GetCheckpoint"): u(
                "GetCheckpoint",
                sp.GetCheckpointRequest,
                sp.GetCheckpointResponse,
                self.get_checkpoint,
            ),
            p("GetEpoch"): u("GetEpoch", sp.GetEpochRequest, sp.GetEpochResponse, self.get_epoch),
            p("ListEvents"): s(
                "ListEvents", sp.ListEventsRequest, sp.ListEventsResponse, self.list_events
            ),
        }

    async def get_service_info(self, _: sp.GetServiceInfoRequest) -> sp.GetServiceInfoResponse:
        tip = self.ledger.checkpoints[-1]
        return sp.GetServiceInfoResponse(
            chain_id=self.ledger.chain_id,
            chain="localnet",
            epoch=self.ledger.epoch,
            checkpoint_height=tip.sequence_number,
            timestamp=proto.timestamp(tip.timestamp_ms),
            lowest_available_checkpoint=self.faults.pruning_floor,
            lowest_available_checkpoint_objects=self.faults.pruning_floor,
            server=SERVER_NAME,
        )

    def _lookup_object(self, req: sp.GetObjectRequest) -> sp.Object:
        oid = _object_id(req.object_id)
        if req.version is not None:
            obj = self.ledger.history.get((oid, req.version))
            if obj is None:
                raise GRPCError(
                    Status.NOT_FOUND, f"Object {oid} not found at version {req.version}"
                )
        else:
            found = self.ledger.objects.get(oid)
            if found is None:
                raise GRPCError(Status.NOT_FOUND, f"Object {oid} not found")
            obj = found
        return proto.object_proto(obj)

    async def get_object(self, req: sp.GetObjectRequest) -> sp.GetObjectResponse:
        mask = proto.requested(req.read_mask, ["object_id", "version", "digest"])
        return sp.GetObjectResponse(object=proto.prune(self._lookup_object(req), mask))

    async def batch_get_objects(self, req: sp.BatchGetObjectsRequest) -> sp.BatchGetObjectsResponse:
        mask = proto.requested(req.read_mask, ["object_id", "version", "digest"])
        results: list[sp.GetObjectResult] = []
        for item in req.requests:
            try:
                results.append(
                    sp.GetObjectResult(object=proto.prune(self._lookup_object(item), mask))
                )
            except GRPCError as exc:
                results.append(
                    sp.GetObjectResult(
                        error=grpc_status.Status(code=exc.status.value, message=str(exc.message))
                    )
                )
        return sp.BatchGetObjectsResponse(objects=results)

    def _lookup_tx(self, digest: str | None) -> sp.ExecutedTransaction:
        if not digest:
            raise GRPCError(Status.INVALID_ARGUMENT, "missing digest")
        tx = self.ledger.transactions.get(digest)
        if tx is None:
            raise GRPCError(Status.NOT_FOUND, f"Transaction {digest} not found")
        return proto.executed_proto(tx)

    async def get_transaction(self, req: sp.GetTransactionRequest) -> sp.GetTransactionResponse:
        mask = proto.requested(req.read_mask, ["digest"])
        return sp.GetTransactionResponse(transaction=proto.prune(self._lookup_tx(req.digest), mask))

    async def batch_get_transactions(
        self, req: sp.BatchGetTransactionsRequest
    ) -> sp.BatchGetTransactionsResponse:
        mask = proto.requested(req.read_mask, ["digest"])
        results: list[sp.GetTransactionResult] = []
        for digest in req.digests:
            try:
                results.append(
                    sp.GetTransactionResult(transaction=proto.prune(self._lookup_tx(digest), mask))
                )
            except GRPCError as exc:
                results.append(
                    sp.GetTransactionResult(
                        error=grpc_status.Status(code=exc.status.value, message=str(exc.message))
                    )
                )
        return sp.BatchGetTransactionsResponse(transactions=results)

    async def get_checkpoint(self, req: sp.GetCheckpointRequest) -> sp.GetCheckpointResponse:
        cps = self.ledger.checkpoints
        if req.sequence_number is not None:
            if req.sequence_number >= len(cps):
                raise GRPCError(Status.NOT_FOUND, f"Checkpoint {req.sequence_number} not found")
            cp = cps[req.sequence_number]
        elif req.digest:
            match = [c for c in cps if c.digest == req.digest]
            if not match:
                raise GRPCError(Status.NOT_FOUND, f"Checkpoint {req.digest} not found")
            cp = match[0]
        else:
            cp = cps[-1]
        txs = [self.ledger.transactions[d] for d in cp.transactions]
        total = sum(len(c.transactions) for c in cps[: cp.sequence_number + 1])
        mask = proto.requested(req.read_mask, ["sequence_number", "digest"])
        return sp.GetCheckpointResponse(
            checkpoint=proto.prune(proto.checkpoint_proto(cp, txs, total), mask)
        )

    async def get_epoch(self, req: sp.GetEpochRequest) -> sp.GetEpochResponse:
        epochs = self.ledger.epochs
        number = self.ledger.epoch if req.epoch is None else req.epoch
        if number >= len(epochs):
            raise GRPCError(Status.NOT_FOUND, f"Epoch {number} not found")
        rec = epochs[number]
        epoch = sp.Epoch(
            epoch=rec.epoch,
            first_checkpoint=rec.first_checkpoint,
            last_checkpoint=rec.last_checkpoint,
            start=proto.timestamp(rec.start_ms),
            end=proto.timestamp(rec.end_ms),
            reference_gas_price=rec.reference_gas_price,
            protocol_config=sp.ProtocolConfig(
                protocol_version=PROTOCOL_VERSION,
                configs={k: proto.json_value(v) for k, v in _PROTOCOL_CONFIGS.items()},
            ),
        )
        mask = proto.requested(
            req.read_mask,
            [
                "epoch",
                "first_checkpoint",
                "last_checkpoint",
                "start",
                "end",
                "reference_gas_price",
                "protocol_config.protocol_version",
            ],
        )
        return sp.GetEpochResponse(epoch=proto.prune(epoch, mask))

    async def list_events(self, req: sp.ListEventsRequest) -> AsyncIterator[sp.ListEventsResponse]:
        options = req.options or sp.QueryOptions()
        limit = min(options.limit or DEFAULT_PAGE, MAX_PAGE)
        descending = options.ordering == sp.Ordering.DESCENDING
        if self.faults.events_disabled:  # sui-rpc-api without its indexes (the default)
            raise GRPCError(Status.UNAVAILABLE, "rpc indexes are disabled")
        tip = self.ledger.checkpoints[-1].sequence_number
        floor = self.faults.pruning_floor
        first_cp = req.start_checkpoint or 0
        end_cp = tip + 1 if req.end_checkpoint is None else min(req.end_checkpoint, tip + 1)
        after = _decode_cursor(options.after) if options.after else None
        before = _decode_cursor(options.before) if options.before else None
        # An open lower bound is clamped to the pruning floor; an explicit one below it
        # (start checkpoint or cursor) is OUT_OF_RANGE, as on a pruning full node.
        if (req.start_checkpoint is not None and first_cp < floor) or (
            after is not None and after[0] < floor
        ):
            raise GRPCError(
                Status.OUT_OF_RANGE, f"requested data below earliest available checkpoint {floor}"
            )
        first_cp = max(first_cp, floor)
        scan_limited = False
        if self.faults.events_scan_limit is not None and not descending:
            # N checkpoints past the cursor's (or from the start), as a scan budget would
            scan_from = max(first_cp, after[0] + 1 if after is not None else 0)
            if scan_from + self.faults.events_scan_limit < end_cp:
                end_cp, scan_limited = scan_from + self.faults.events_scan_limit, True
        if req.filter is not None and not req.filter.terms:
            raise GRPCError(Status.INVALID_ARGUMENT, "a present filter must have at least one term")
        mask = proto.requested(req.read_mask, ["*"])

        def in_range(e: EventRecord) -> bool:
            pos = _position(e)
            return (
                first_cp <= (e.checkpoint or 0) < end_cp
                and (after is None or pos > after)
                and (before is None or pos < before)
                and (req.filter is None or _matches(req.filter, e))
            )

        events = [e for e in self.ledger.events if in_range(e)]
        if descending:
            events.reverse()
        for n, event in enumerate(events[:limit], start=1):
            cp = event.checkpoint or 0
            covered = cp - 1 if not descending else cp + 1
            last = n == limit
            yield sp.ListEventsResponse(
                event=proto.prune(proto.event_proto(event, standalone=True), mask),
                watermark=sp.Watermark(
                    cursor=_encode_cursor(_position(event)),
                    checkpoint=covered if 0 <= covered <= tip else None,
                ),
                end=sp.QueryEnd(reason=sp.QueryEndReason.ITEM_LIMIT) if last else None,
            )
            if last:
                return
        if descending:
            frontier = (first_cp, 0, 0)
            reason = sp.QueryEndReason.CHECKPOINT_BOUND
            covered_cp = first_cp
        else:
            frontier = (end_cp - 1, _END, _END)
            reason = (
                sp.QueryEndReason.SCAN_LIMIT
                if scan_limited
                else sp.QueryEndReason.LEDGER_TIP
                if end_cp == tip + 1
                else sp.QueryEndReason.CHECKPOINT_BOUND
            )
            covered_cp = end_cp - 1
        if before is not None and not descending and frontier >= before:
            frontier, reason = before, sp.QueryEndReason.CURSOR_BOUND
        if after is not None and descending and frontier <= after:
            frontier, reason = after, sp.QueryEndReason.CURSOR_BOUND
        if after is not None and not descending and frontier < after:
            frontier = after  # never regress behind the caller's own cursor
        yield sp.ListEventsResponse(
            watermark=sp.Watermark(cursor=_encode_cursor(frontier), checkpoint=covered_cp),
            end=sp.QueryEnd(reason=reason),
        )


def _position(e: EventRecord) -> tuple[int, int, int]:
    return (e.checkpoint or 0, e.tx_index, e.event_seq)


def _encode_cursor(pos: tuple[int, int, int]) -> bytes:
    return struct.pack(">QQQ", *pos)


def _decode_cursor(raw: bytes) -> tuple[int, int, int]:
    if len(raw) != 24:
        raise GRPCError(Status.INVALID_ARGUMENT, "invalid cursor")
    a, b, c = struct.unpack(">QQQ", raw)
    return (a, b, c)


def _split_type(type_str: str) -> list[str]:
    head, sep, rest = type_str.partition("<")
    parts = head.split("::")
    with contextlib.suppress(ValueError):
        parts[0] = bcs.normalize_address(parts[0])
    if sep:
        parts[-1] = parts[-1] + "<" + rest
    return parts


def _literal_matches(lit: sp.EventLiteral, e: EventRecord) -> bool:
    if lit.sender is not None:
        return bool(lit.sender.address) and _object_id(lit.sender.address, "sender") == e.sender
    if lit.emit_module is not None:
        want = (lit.emit_module.module or "").split("::")
        have = [e.package_id, e.module]
        return _split_type(want[0])[0] == have[0] and (len(want) < 2 or want[1] == have[1])
    if lit.event_type is not None:
        want = _split_type(lit.event_type.event_type or "")
        have = _split_type(e.type)
        if len(want) == 3 and "<" in want[2]:
            return type_matches(e.type, lit.event_type.event_type or "")
        if len(want) == 3:
            return have[:2] == want[:2] and have[2].split("<")[0] == want[2]
        return have[: len(want)] == want
    return False  # event stream heads are not modelled


def _matches(flt: sp.EventFilter, e: EventRecord) -> bool:
    return any(
        all(_literal_matches(lit, e) != lit.negated for lit in term.literals) for term in flt.terms
    )


class StateService(_Base):
    SERVICE = "StateService"

    def __mapping__(self) -> Mapping[str, Handler]:
        u, p = self._unary, self._path
        return {
            p("ListOwnedObjects"): u(
                "ListOwnedObjects",
                sp.ListOwnedObjectsRequest,
                sp.ListOwnedObjectsResponse,
                self.list_owned_objects,
            ),
            p("GetBalance"): u(
                "GetBalance", sp.GetBalanceRequest, sp.GetBalanceResponse, self.get_balance
            ),
            p("ListBalances"): u(
                "ListBalances", sp.ListBalancesRequest, sp.ListBalancesResponse, self.list_balances
            ),
        }

    async def list_owned_objects(
        self, req: sp.ListOwnedObjectsRequest
    ) -> sp.ListOwnedObjectsResponse:
        owner = _object_id(req.owner, "owner")
        size = min(req.page_size or DEFAULT_PAGE, MAX_PAGE)
        objs = self.ledger.owned_by(owner, req.object_type or None)
        if req.page_token:
            start = "0x" + req.page_token.hex()
            objs = [o for o in objs if o.object_id > start]
        page = objs[:size]
        mask = proto.requested(req.read_mask, ["object_id", "version", "object_type"])
        return sp.ListOwnedObjectsResponse(
            objects=[proto.prune(proto.object_proto(o), mask) for o in page],
            next_page_token=bytes.fromhex(page[-1].object_id[2:]) if len(objs) > size else None,
        )

    def _sui_balance(self, owner: str) -> sp.Balance:
        total = sum(o.balance or 0 for o in self.ledger.owned_by(owner, SUI_COIN_TYPE))
        return sp.Balance(coin_type=SUI_TYPE, balance=total, address_balance=0, coin_balance=total)

    async def get_balance(self, req: sp.GetBalanceRequest) -> sp.GetBalanceResponse:
        owner = _object_id(req.owner, "owner")
        coin_type = req.coin_type or SUI_TYPE
        if not type_matches(coin_type, SUI_TYPE):
            return sp.GetBalanceResponse(
                balance=sp.Balance(
                    coin_type=coin_type, balance=0, address_balance=0, coin_balance=0
                )
            )
        return sp.GetBalanceResponse(balance=self._sui_balance(owner))

    async def list_balances(self, req: sp.ListBalancesRequest) -> sp.ListBalancesResponse:
        balance = self._sui_balance(_object_id(req.owner, "owner"))
        return sp.ListBalancesResponse(balances=[balance] if balance.balance else [])


class MovePackageService(_Base):
    SERVICE = "MovePackageService"

    def __mapping__(self) -> Mapping[str, Handler]:
        return {
            self._path("GetFunction"): self._unary(
                "GetFunction", sp.GetFunctionRequest, sp.GetFunctionResponse, self.get_function
            )
        }

    async def get_function(self, req: sp.GetFunctionRequest) -> sp.GetFunctionResponse:
        pkg = _object_id(req.package_id, "package_id")
        runtime = self.ledger.runtimes.get(pkg)
        describe = getattr(runtime, "describe", None)
        signature = describe(req.module_name or "", req.name or "") if describe else None
        if signature is None:
            raise GRPCError(
                Status.NOT_FOUND, f"Function {pkg}::{req.module_name}::{req.name} not found"
            )
        params, is_entry = signature
        return sp.GetFunctionResponse(
            function=sp.FunctionDescriptor(
                name=req.name,
                visibility=sp.FunctionDescriptorVisibility.PUBLIC,
                is_entry=is_entry,
                parameters=[_open_signature(t) for t in params],
                returns=[],
            )
        )


_SCALARS = {
    "address": "ADDRESS",
    "bool": "BOOL",
    "u8": "U8",
    "u16": "U16",
    "u32": "U32",
    "u64": "U64",
    "u128": "U128",
    "u256": "U256",
}


def _open_body(type_str: str) -> sp.OpenSignatureBody:
    if type_str in _SCALARS:
        return sp.OpenSignatureBody(type=sp.OpenSignatureBodyType[_SCALARS[type_str]])
    if type_str.startswith("vector<") and type_str.endswith(">"):
        return sp.OpenSignatureBody(
            type=sp.OpenSignatureBodyType.VECTOR,
            type_parameter_instantiation=[_open_body(type_str[7:-1])],
        )
    return sp.OpenSignatureBody(type=sp.OpenSignatureBodyType.DATATYPE, type_name=type_str)


def _open_signature(type_str: str) -> sp.OpenSignature:
    ref = None
    if type_str.startswith("&mut "):
        ref, type_str = sp.OpenSignatureReference.MUTABLE, type_str[5:]
    elif type_str.startswith("&"):
        ref, type_str = sp.OpenSignatureReference.IMMUTABLE, type_str[1:]
    return sp.OpenSignature(reference=ref, body=_open_body(type_str))


def _signatures(sigs: list[sp.UserSignature]) -> list[bytes]:
    out: list[bytes] = []
    for sig in sigs:
        if sig.bcs is not None and sig.bcs.value:
            out.append(bytes(sig.bcs.value))
        elif sig.simple is not None and sig.simple.signature and sig.simple.public_key:
            scheme = 0 if sig.scheme is None else int(sig.scheme)
            out.append(bytes([scheme]) + sig.simple.signature + sig.simple.public_key)
        else:
            raise GRPCError(
                Status.INVALID_ARGUMENT,
                "only simple (Ed25519/Secp256k1/Secp256r1) signatures are supported",
            )
    return out


def _tx_bytes(tx: sp.Transaction | None) -> bytes:
    if tx is None or tx.bcs is None or not tx.bcs.value:
        raise GRPCError(
            Status.UNIMPLEMENTED
            if tx is not None and tx.kind is not None
            else Status.INVALID_ARGUMENT,
            "the local stand-in needs transaction.bcs (BCS TransactionData)",
        )
    return bytes(tx.bcs.value)


class TransactionExecutionService(_Base):
    SERVICE = "TransactionExecutionService"

    def __mapping__(self) -> Mapping[str, Handler]:
        u, p = self._unary, self._path
        return {
            p("ExecuteTransaction"): u(
                "ExecuteTransaction",
                sp.ExecuteTransactionRequest,
                sp.ExecuteTransactionResponse,
                self.execute_transaction,
            ),
            p("SimulateTransaction"): u(
                "SimulateTransaction",
                sp.SimulateTransactionRequest,
                sp.SimulateTransactionResponse,
                self.simulate_transaction,
            ),
        }

    async def execute_transaction(
        self, req: sp.ExecuteTransactionRequest
    ) -> sp.ExecuteTransactionResponse:
        tx_bytes = _tx_bytes(req.transaction)
        if self.faults.take_dropped_execution():
            raise GRPCError(Status.UNAVAILABLE, "request dropped before execution (injected fault)")
        result = await self.ledger.execute(
            tx_bytes, _signatures(req.signatures), latency=self.faults.execute_latency
        )
        if self.faults.take_lost_response():
            self.faults.lost_responses.append(result.digest)
            # what a node says when finality takes longer than its wait: it keeps trying
            raise GRPCError(
                Status.UNAVAILABLE,
                "Transaction timed-out before finality could be reached (injected fault)",
            )
        mask = proto.requested(req.read_mask, ["effects.status", "checkpoint"])
        return sp.ExecuteTransactionResponse(
            transaction=proto.prune(proto.executed_proto(result), mask)
        )

    async def simulate_transaction(
        self, req: sp.SimulateTransactionRequest
    ) -> sp.SimulateTransactionResponse:
        result = self.ledger.simulate(_tx_bytes(req.transaction))
        paths = list(req.read_mask.paths) if req.read_mask and req.read_mask.paths else []
        if any(not (x == "*" or x.startswith(("transaction", "command_outputs"))) for x in paths):
            paths = ["transaction." + x for x in paths]  # ExecutedTransaction-relative masks
        mask = proto.mask_tree(paths or ["transaction.effects.status"])
        response = sp.SimulateTransactionResponse(
            transaction=proto.executed_proto(result),
            suggested_gas_price=self.ledger.reference_gas_price,
        )
        return proto.prune(response, mask)


def services(ledger: Ledger, faults: Faults) -> list[Any]:
    return [
        LedgerService(ledger, faults),
        StateService(ledger, faults),
        MovePackageService(ledger, faults),
        TransactionExecutionService(ledger, faults),
    ]
