"""Logging setup: plain text by default, one JSON object per line as an option.

JSON logs go through python-json-logger (a kopf dependency already), so log shippers
get structured fields without regex parsing. The level (ATOMA_LOG_LEVEL) applies to the
operator and kopf; libraries that log every request or frame stay at WARNING or above
(at DEBUG the Kubernetes client would print whole response bodies, Secrets included).
"""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter

from atoma_operator.settings import LogFormat, LogLevel

CHATTY_LIBRARIES = (
    "kubernetes.client.rest",
    "urllib3",
    "grpclib",
    "hpack",
    "h2",
    "asyncio",
    "aiohttp.access",
)
"""Loggers kept at WARNING or above whatever the operator's level."""


def configure_logging(fmt: LogFormat, level: LogLevel | int = LogLevel.INFO) -> None:
    """Install the handler for ``fmt`` (JSON replaces any; text only when none exists) and
    set the root logger's level; chatty libraries stay at WARNING or above."""
    number = level.number if isinstance(level, LogLevel) else level
    root = logging.getLogger()
    if fmt is LogFormat.JSON:
        handler = logging.StreamHandler()
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
        root.handlers = [handler]
    elif not root.handlers:  # `atoma-operator run` calls kopf.run(), which installs none
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s %(message)s"))
        root.handlers = [handler]
    root.setLevel(number)
    for noisy in CHATTY_LIBRARIES:
        logging.getLogger(noisy).setLevel(max(number, logging.WARNING))
