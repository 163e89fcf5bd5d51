"""ATOMA_LOG_FORMAT=json: every log record is one JSON object on one line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest

from atoma_operator.logs import configure_logging
from atoma_operator.settings import LogFormat, Settings


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """configure_logging changes the root logger: restore it for the other tests."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield root
    finally:
        root.handlers = handlers
        root.setLevel(level)


def _capture(root: logging.Logger) -> io.StringIO:
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    return buffer


def test_setting_selects_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATOMA_LOG_FORMAT", "json")
    assert Settings().log_format is LogFormat.JSON


def test_a_record_is_one_json_object_with_the_standard_fields(root_logger: logging.Logger) -> None:
    configure_logging(LogFormat.JSON)
    out = _capture(root_logger)
    logging.getLogger("atoma_operator.test").info(
        "settled %d stacks", 3, extra={"tx_digest": "D1gest"}
    )
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["level"] == "INFO"
    assert record["logger"] == "atoma_operator.test"
    assert record["message"] == "settled 3 stacks"
    assert record["tx_digest"] == "D1gest"
    datetime.strptime(record["time"].split(",")[0], "%Y-%m-%d %H:%M:%S")
    assert not {"asctime", "levelname", "name"} & set(record)


def test_a_traceback_stays_inside_its_json_line(root_logger: logging.Logger) -> None:
    configure_logging(LogFormat.JSON)
    out = _capture(root_logger)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("atoma_operator.test").exception("pass failed")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["level"] == "ERROR"
    assert record["message"] == "pass failed"
    assert "RuntimeError: boom" in record["exc_info"]


def test_text_format_leaves_the_handlers_alone(root_logger: logging.Logger) -> None:
    before = list(root_logger.handlers)
    configure_logging(LogFormat.TEXT)
    assert root_logger.handlers == before
