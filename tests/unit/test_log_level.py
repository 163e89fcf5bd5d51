"""ATOMA_LOG_LEVEL: DEBUG/INFO/WARNING/ERROR in any case, applied by configure_logging,
with the chatty libraries held at WARNING or above."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from atoma_operator.logs import CHATTY_LIBRARIES, configure_logging
from atoma_operator.settings import LogFormat, LogLevel, Settings, SettingsInvalid


@pytest.fixture(autouse=True)
def _no_config(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ATOMA_CONFIG_FILE", "ATOMA_LOG_LEVEL", "ATOMA_KEY_FILE", "ATOMA_SIGNING_KEY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def loggers() -> Iterator[None]:
    """configure_logging changes the root and library loggers: restore them."""
    names = ["", *CHATTY_LIBRARIES]
    saved = {n: logging.getLogger(n).level for n in names}
    handlers = list(logging.getLogger().handlers)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
        logging.getLogger().handlers = handlers


def test_default_is_info() -> None:
    assert Settings().log_level is LogLevel.INFO


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("debug", LogLevel.DEBUG),
        ("Info", LogLevel.INFO),
        ("WARNING", LogLevel.WARNING),
        (" error ", LogLevel.ERROR),
    ],
)
def test_any_case_is_accepted(
    raw: str, expected: LogLevel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATOMA_LOG_LEVEL", raw)
    assert Settings().log_level is expected


@pytest.mark.parametrize("raw", ["verbose", "WARN", "10", ""])
def test_a_bad_level_is_refused_with_the_allowed_values(
    raw: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATOMA_LOG_LEVEL", raw)
    with pytest.raises(SettingsInvalid) as caught:
        Settings()
    message = str(caught.value)
    assert "log_level" in message
    assert all(name in message for name in ("DEBUG", "INFO", "WARNING", "ERROR"))


@pytest.mark.usefixtures("loggers")
@pytest.mark.parametrize("level", list(LogLevel))
def test_configure_logging_applies_the_level(level: LogLevel) -> None:
    configure_logging(LogFormat.TEXT, level)
    root = logging.getLogger()
    assert root.level == getattr(logging, level.value)
    assert logging.getLogger("atoma_operator.reconcile").getEffectiveLevel() == root.level
    # the Kubernetes client would print whole responses at DEBUG: never below WARNING
    for name in CHATTY_LIBRARIES:
        assert logging.getLogger(name).level == max(root.level, logging.WARNING), name


@pytest.mark.usefixtures("loggers")
def test_debug_reaches_the_operator_but_not_the_kubernetes_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    configure_logging(LogFormat.TEXT, LogLevel.DEBUG)
    caplog.set_level(logging.NOTSET)  # capture what the loggers let through
    logging.getLogger("atoma_operator.test").debug("operator detail")
    logging.getLogger("kubernetes.client.rest").debug("response body: secret data")
    assert [r.getMessage() for r in caplog.records] == ["operator detail"]
