"""Every service logs JSON lines through one setup (services/logs.py)."""

from __future__ import annotations

import ast
import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from services.collectors import runner
from services.logs import JsonFormatter, setup_logging
from tests.unit.architecture.imports import module_path, modules

pytestmark = pytest.mark.unit


@pytest.fixture
def root_restored() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in ("proctor", "httpx", "httpcore", "httpx2"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def _lines(root: logging.Logger, emit: object) -> list[dict[str, object]]:
    out = io.StringIO()
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)
    if callable(emit):
        emit()
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_is_json_with_the_trace_of_the_current_span(root_restored: logging.Logger) -> None:
    setup_logging("INFO")
    tracer = TracerProvider().get_tracer("t")
    log = logging.getLogger("proctor.test")

    def emit() -> None:
        log.info("outside %s", "a span")
        with tracer.start_as_current_span("s") as span:
            log.warning("inside")
            ids = span.get_span_context()
        log.debug("below the level")
        emits.append(ids)

    emits: list[object] = []
    outside, inside = _lines(root_restored, emit)
    assert outside["message"] == "outside a span" and "trace_id" not in outside
    assert (outside["level"], outside["logger"]) == ("INFO", "proctor.test")
    ctx = emits[0]
    assert inside["trace_id"] == f"{ctx.trace_id:032x}"  # type: ignore[attr-defined]
    assert inside["span_id"] == f"{ctx.span_id:016x}"  # type: ignore[attr-defined]


def test_an_exception_is_one_line(root_restored: logging.Logger) -> None:
    setup_logging("INFO")

    def emit() -> None:
        try:
            raise ValueError("bad\ninput")
        except ValueError:
            logging.getLogger("x").exception("failed")

    (line,) = _lines(root_restored, emit)
    assert line["message"] == "failed" and "ValueError: bad" in str(line["exc"])


def test_named_loggers_keep_their_own_level(root_restored: logging.Logger) -> None:
    setup_logging("WARNING", {"proctor": "INFO"})

    def emit() -> None:
        logging.getLogger("proctor.receiver").info("kept")
        logging.getLogger("other").info("dropped")
        logging.getLogger("httpx").info("a request line, dropped")

    assert [line["message"] for line in _lines(root_restored, emit)] == ["kept"]


def test_the_collectors_log_json_too(root_restored: logging.Logger) -> None:
    runner.setup_logging("INFO")
    (handler,) = root_restored.handlers
    assert isinstance(handler.formatter, JsonFormatter)

    def emit() -> None:
        logging.getLogger("proctor.collectors").info("polled")

    assert _lines(root_restored, emit)[0]["message"] == "polled"


def test_no_module_sets_logging_up_but_services_logs() -> None:
    """basicConfig, handlers and formatters are services/logs.py's alone."""
    calls = {"basicConfig", "dictConfig", "setFormatter", "StreamHandler", "FileHandler"}
    offenders = []
    for module, path in modules().items():
        if module == "services.logs":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in calls:
                offenders.append(f"{module_path(module)}:{node.lineno} {node.attr}")
    assert not offenders, "logging set up outside services/logs.py:\n" + "\n".join(offenders)
