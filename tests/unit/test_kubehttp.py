"""The event-loop HTTP path to the apiserver: credentials and errors as the client has them."""

from __future__ import annotations

import socket

import pytest
from kubernetes.client import ApiClient, Configuration

from atoma_operator.kubehttp import ApiUnreachable, KubeHttp, object_path


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _client(host: str, token: str | None = None) -> ApiClient:
    cfg = Configuration()
    cfg.host = host
    if token is not None:
        cfg.api_key["BearerToken"] = token
        cfg.api_key_prefix["BearerToken"] = "Bearer"
    return ApiClient(cfg)


async def test_an_unreachable_apiserver_is_an_oserror_the_controller_retries() -> None:
    http = KubeHttp(_client(f"http://127.0.0.1:{_closed_port()}"))
    with pytest.raises(ApiUnreachable) as caught:
        await http.request("GET", "/apis/atoma.network/v1alpha1")
    assert isinstance(caught.value, OSError)
    await http.close()


def test_the_token_is_sent_as_the_kubernetes_client_sends_it_and_refreshed() -> None:
    client = _client("http://127.0.0.1:1", token="first")
    tokens = iter(["second"])

    def refresh(cfg: Configuration) -> None:  # what in-cluster config does on expiry
        cfg.api_key["BearerToken"] = next(tokens, cfg.api_key["BearerToken"])

    client.configuration.refresh_api_key_hook = refresh
    http = KubeHttp(client)
    assert http._headers(None)["authorization"] == "Bearer second"
    assert "authorization" not in KubeHttp(_client("http://127.0.0.1:1"))._headers(None)


def test_names_are_quoted_in_paths() -> None:
    path = object_path("atoma.network", "v1alpha1", "ns", "stacksettlements", "a/b")
    assert path == "/apis/atoma.network/v1alpha1/namespaces/ns/stacksettlements/a%2Fb"


async def test_watch_lines_split_across_chunks_and_larger_than_a_readline() -> None:
    """A watch event may arrive in pieces and exceed aiohttp's 128 KiB readline limit (an
    object with many stacks' intents): each line comes out whole, once."""
    import asyncio
    import json

    from aiohttp import web

    big = json.dumps({"type": "MODIFIED", "object": {"pad": "x" * 300_000}}).encode()
    pieces = [b'{"type":"ADDED"}\n{"type":', b'"MODIFIED"}\n', big[:1000], big[1000:], b"\n"]

    async def watch(request: web.Request) -> web.StreamResponse:
        assert request.query["watch"] == "true"
        response = web.StreamResponse()
        await response.prepare(request)
        for piece in pieces:
            await response.write(piece)
            await asyncio.sleep(0)
        return response

    app = web.Application()
    app.router.add_get("/w", watch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    http = KubeHttp(_client(f"http://127.0.0.1:{port}"))
    try:
        lines = [line async for line in http.lines("/w", {"watch": "true"}, read_timeout=10)]
    finally:
        await http.close()
        await runner.cleanup()
    assert [json.loads(line)["type"] for line in lines] == ["ADDED", "MODIFIED", "MODIFIED"]
    assert lines[2] == big
