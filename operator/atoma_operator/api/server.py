"""The daemon's HTTP API (seeds 000 and 001) as an aiohttp application.

Each POST creates a StackSettlement or Attestation named after the request (a retry
finds it and submits nothing twice), waits up to `wait_seconds` for its digests and
answers `{"tx_digests": [...]}` in stack order, or 202 with the resource's name when
they are not there yet. The GETs answer from the claimed-stack summaries. Callers
authenticate with a bearer token (TokenReview) and must be allowed, by
SubjectAccessReview, to create (POST) or list (GET) the resource in the namespace, as
kube-rbac-proxy does. Errors are JSON: `{"error": "..."}`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from atoma_operator.api.kube_backend import Caller, CreateRefused, KubeBackend
from atoma_operator.api.openapi import OPENAPI
from atoma_operator.api.requests import (
    PLURAL,
    AttestationsRequest,
    RequestError,
    TrySettleRequest,
    _Body,
    parse,
    to_resource,
)
from atoma_operator.claimed import COMPONENT, COMPONENT_LABEL, DATA_KEY, NODE_LABEL, seed_view

log = logging.getLogger(__name__)
CALLER: Final = web.RequestKey("caller", Caller)
PUBLIC: Final = frozenset({"/health", "/openapi.json", "/api-docs/openapi.json"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ApiConfig:
    namespace: str
    """Where POSTs create resources."""
    operator_namespace: str
    """Where the operator writes the claimed-stack summaries."""
    badges: frozenset[int]
    wait_seconds: float = 30.0
    poll_seconds: float = 0.5


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def build_app(backend: KubeBackend, config: ApiConfig) -> web.Application:
    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error(401, "missing bearer token")
        caller = await backend.authenticate(token.strip())
        if caller is None:
            return _error(401, "token not accepted by the Kubernetes API")
        request[CALLER] = caller
        return await handler(request)

    async def authorize(request: web.Request, verb: str, resource: str) -> web.Response | None:
        caller: Caller = request[CALLER]
        if await backend.allowed(caller, verb=verb, resource=resource, namespace=config.namespace):
            return None
        return _error(
            403,
            f"{caller.username} may not {verb} {resource} in namespace {config.namespace}",
        )

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def openapi(_: web.Request) -> web.Response:
        return web.json_response(OPENAPI)

    async def submit(request: web.Request, kind: str, model: type[_Body]) -> web.Response:
        if (refused := await authorize(request, "create", PLURAL[kind])) is not None:
            return refused
        try:
            body = parse(model, await request.read())
            if body.node_small_id is not None and body.node_small_id not in config.badges:
                raise RequestError(
                    f"node {body.node_small_id} is not one of the operator's node badges"
                )
            if not config.badges:
                raise RequestError("the operator holds no node badge")
            resource = to_resource(kind, body, config.namespace)
            created = await backend.create(resource)
        except (RequestError, CreateRefused) as exc:
            return _error(400, str(exc))
        name = resource["metadata"]["name"]
        log.info("%s %s/%s (%s)", kind, config.namespace, name, "created" if created else "exists")
        return await wait_for_digests(kind, name, len(body.stack_small_ids))

    async def wait_for_digests(kind: str, name: str, stacks: int) -> web.Response:
        """Poll the resource until its digests are complete, it stalls, or time is up."""
        deadline = time.monotonic() + config.wait_seconds
        ref = {"kind": kind, "namespace": config.namespace, "name": name}
        while True:
            obj = await backend.get(kind, config.namespace, name)
            status = obj.get("status") or {}
            digests = list(status.get("txDigests") or [])
            conditions = {c.get("type"): c for c in status.get("conditions") or []}
            stalled = conditions.get("Stalled", {})
            if stalled.get("status") == "True":
                return _error(500, stalled.get("message") or "failed", tx_digests=digests, **ref)
            if kind == "StackSettlement" and len(digests) >= stacks:
                return web.json_response({"tx_digests": digests})
            reconciling = conditions.get("Reconciling", {})
            if kind == "Attestation" and reconciling.get("status") == "False" and digests:
                return web.json_response({"tx_digests": digests})
            if time.monotonic() >= deadline:
                return web.json_response(
                    {"status": "Accepted", "tx_digests": digests, **ref}, status=202
                )
            await asyncio.sleep(config.poll_seconds)  # a poll interval with a deadline

    async def try_settle(request: web.Request) -> web.Response:
        return await submit(request, "StackSettlement", TrySettleRequest)

    async def attestations(request: web.Request) -> web.Response:
        return await submit(request, "Attestation", AttestationsRequest)

    async def claimed(request: web.Request) -> web.Response:
        if (refused := await authorize(request, "list", PLURAL["StackSettlement"])) is not None:
            return refused
        selector = f"{COMPONENT_LABEL}={COMPONENT}"
        node = request.match_info.get("id")
        if node is not None:
            if not node.isdigit():
                return _error(400, f"node id must be a non-negative integer, got {node!r}")
            selector += f",{NODE_LABEL}={int(node)}"
        try:
            summaries = await backend.config_maps(config.operator_namespace, selector)
            stacks: dict[int, dict[str, Any]] = {}
            for data in summaries:
                for entry in json.loads(data.get(DATA_KEY) or "[]"):
                    stacks[int(entry["stack_small_id"])] = seed_view(entry)
        except (ValueError, KeyError):
            return _error(
                500, "Failed to get node claimed stacks" if node else "Failed to get claimed stacks"
            )
        return web.json_response([stacks[s] for s in sorted(stacks)])

    app = web.Application(middlewares=[authenticate])
    app.router.add_get("/health", health)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/api-docs/openapi.json", openapi)
    app.router.add_post("/try_settle_stack_ids", try_settle)
    app.router.add_post("/submit_stack_settlement_attestations", attestations)
    app.router.add_get("/claimed_stacks", claimed)
    app.router.add_get("/claimed_stacks/{id}", claimed)
    return app
