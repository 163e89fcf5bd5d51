"""Running the API: settings and a Kubernetes client in, an HTTP server out."""

from __future__ import annotations

from aiohttp import web

from atoma_operator.api.kube_backend import KubeBackend
from atoma_operator.api.server import ApiConfig, build_app
from atoma_operator.kube import make_api_client
from atoma_operator.logs import configure_logging
from atoma_operator.settings import Settings


def serve(*, host: str, port: int, namespace: str | None, wait_seconds: float) -> None:
    """Serve until interrupted. Badges and the operator namespace come from the
    operator's own settings (ATOMA_BADGES, POD_NAMESPACE), so both agree on them."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    config = ApiConfig(
        namespace=namespace or settings.operator_namespace,
        operator_namespace=settings.operator_namespace,
        badges=frozenset(b.node_small_id for b in settings.badges),
        wait_seconds=wait_seconds,
    )
    app = build_app(KubeBackend(make_api_client()), config)
    web.run_app(app, host=host, port=port, print=None)
