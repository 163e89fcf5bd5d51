"""Logging setup: plain text by default, one JSON object per line as an option.

JSON logs go through python-json-logger (a kopf dependency already), so log shippers
get structured fields without regex parsing.
"""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter

from atoma_operator.settings import LogFormat


def configure_logging(fmt: LogFormat, level: int = logging.INFO) -> None:
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
    root.setLevel(level)
    for noisy in ("kubernetes.client.rest", "urllib3", "grpclib", "hpack"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
