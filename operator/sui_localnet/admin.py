"""The admin HTTP API (JSON over aiohttp) for driving the stand-in from another process.

Every route maps to one `LocalSui` method; errors come back as 400 with a message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from .node import LocalSui

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _coin(obj: Any) -> dict[str, Any]:
    return {
        "object_id": obj.object_id,
        "version": obj.version,
        "digest": obj.digest,
        "balance": obj.balance,
    }


def build_app(node: LocalSui) -> web.Application:
    async def body(request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        data = await request.json()
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text="expected a JSON object")
        return data

    def route(fn: Callable[[dict[str, Any], web.Request], Any]) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                result = fn(await body(request), request)
            except (KeyError, ValueError, TypeError) as exc:
                return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)
            return web.json_response(result)

        return handler

    def fund(d: dict[str, Any], _: web.Request) -> Any:
        coins = node.fund(d["address"], int(d.get("amount", 10**12)), int(d.get("count", 1)))
        return {"coins": [_coin(c) for c in coins]}

    def badge(d: dict[str, Any], _: web.Request) -> Any:
        b = node.create_badge(d["owner"])
        return {"object_id": b.object_id, "node_small_id": b.node_small_id, "owner": b.owner}

    def stack(d: dict[str, Any], _: web.Request) -> Any:
        keys = (
            "selected_node_id",
            "num_compute_units",
            "price_per_one_million",
            "security_level",
            "owner",
        )
        return {"stack_small_id": node.create_stack(**{k: d[k] for k in keys if k in d})}

    def epoch(d: dict[str, Any], _: web.Request) -> Any:
        return {"epoch": node.advance_epoch(d.get("reference_gas_price"))}

    def sampling(d: dict[str, Any], _: web.Request) -> Any:
        node.set_sampling(
            probability=d.get("probability"),
            seed=d.get("seed"),
            extra_nodes_count=d.get("extra_nodes_count"),
        )
        return {"ok": True}

    def faults(d: dict[str, Any], _: web.Request) -> Any:
        f = node.faults
        if "execute_latency" in d:
            f.execute_latency = float(d["execute_latency"])
        if "lose_responses" in d:
            f.lose_responses = int(d["lose_responses"])
        if "drop_executions" in d:
            f.drop_executions = int(d["drop_executions"])
        if "strict_locks" in d:
            node.ledger.strict_locks = bool(d["strict_locks"])
        if "events_disabled" in d:
            f.events_disabled = bool(d["events_disabled"])
        if "events_scan_limit" in d:
            limit = d["events_scan_limit"]
            f.events_scan_limit = None if limit is None else int(limit)
        if "pruning_floor" in d:
            f.pruning_floor = int(d["pruning_floor"])
        if d.get("unavailable") is True:
            f.set_unavailable(d.get("unavailable_seconds"))
        elif d.get("unavailable") is False:
            f.set_unavailable(0)
        return {**f.status(), "strict_locks": node.ledger.strict_locks}

    def clear(_: dict[str, Any], __: web.Request) -> Any:
        node.faults.clear()
        return node.faults.status()

    def reset(_: dict[str, Any], __: web.Request) -> Any:
        node.faults.reset_counters()
        node.ledger.shared_latency.reset_counters()
        return node.counters()

    def latency(d: dict[str, Any], _: web.Request) -> Any:
        return node.set_latency(
            mean=None if d.get("mean") is None else float(d["mean"]),
            jitter=None if d.get("jitter") is None else float(d["jitter"]),
            seed=None if d.get("seed") is None else int(d["seed"]),
        )

    def ticket(_: dict[str, Any], request: web.Request) -> Any:
        return {"ticket": node.ticket_json(int(request.match_info["stack"]))}

    def coins(_: dict[str, Any], request: web.Request) -> Any:
        owned = node.ledger.owned_by(request.match_info["address"], "0x2::coin::Coin")
        return {"coins": [_coin(c) for c in owned]}

    app = web.Application()
    app.add_routes(
        [
            web.get("/healthz", route(lambda _d, _r: {"ok": True})),
            web.get("/info", route(lambda _d, _r: node.info())),
            web.get("/counters", route(lambda _d, _r: node.counters())),
            web.post("/counters/reset", route(reset)),
            web.post("/fund", route(fund)),
            web.get("/coins/{address}", route(coins)),
            web.post("/badge", route(badge)),
            web.post("/stack", route(stack)),
            web.post("/epoch/advance", route(epoch)),
            web.post("/sampling", route(sampling)),
            web.post("/faults", route(faults)),
            web.post("/faults/clear", route(clear)),
            web.get("/latency", route(lambda _d, _r: node.ledger.shared_latency.status())),
            web.post("/latency", route(latency)),
            web.get("/ticket/{stack}", route(ticket)),
        ]
    )
    return app


async def start_admin(node: LocalSui, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(build_app(node), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    return runner, sockets[0].getsockname()[1] if sockets else port
