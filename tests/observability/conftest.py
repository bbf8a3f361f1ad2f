"""An app built by ``create_app`` with :func:`install_observability` added, and JSON logs captured."""

from __future__ import annotations

import io
import json
import logging

import pytest

from service.main import create_app
from service.observability import install_observability
from service.observability.logging import configure_logging
from tests.conftest import cds_client


def observed_app(settings, **options):
    """``create_app(settings)`` with observability installed the way create_app will install it."""
    app = create_app(settings)
    if not hasattr(app.state, "observability"):  # until create_app calls install_observability itself
        install_observability(app, app.state.hcc, **options)
    return app


@pytest.fixture()
def app(settings):
    return observed_app(settings)


@pytest.fixture()
def client(app):
    with cds_client(app) as test_client:
        yield test_client


class JsonLogs:
    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler: logging.Handler | None = None

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        """Every line, parsed (a line that is not one JSON object fails the test)."""
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def access(self) -> list[dict]:
        return [line for line in self.lines() if line["logger"] == "hcc_cds.access"]


@pytest.fixture()
def restore_logging():
    """Put back what configure_logging changes: the root's handlers and level, uvicorn's and the libraries' loggers."""
    from service.observability.logging import QUIET_LIBRARIES

    root = logging.getLogger()
    names = ("uvicorn", "uvicorn.error", "uvicorn.access", *QUIET_LIBRARIES)
    saved = {name: (lg.level, lg.disabled, lg.propagate, list(lg.handlers)) for name in names for lg in [logging.getLogger(name)]}
    root_handlers, root_level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in root_handlers:
            root.removeHandler(handler)
    for handler in root_handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(root_level)
    for name, (level, disabled, propagate, handlers) in saved.items():
        lg = logging.getLogger(name)
        lg.setLevel(level)
        lg.disabled, lg.propagate, lg.handlers = disabled, propagate, handlers


@pytest.fixture()
def json_logs(app, restore_logging):
    """configure_logging("DEBUG") writing to a buffer (after the app is built: create_app may configure
    logging itself); everything it changed is put back afterwards."""
    logs = JsonLogs()
    logs.handler = configure_logging("DEBUG", stream=logs.stream)
    return logs
