"""The one logging setup of every proctor service: JSON lines on stderr.

Each entry point (the worker, the collectors and receivers, the submission endpoint, the
scoreboard's sampler) calls :func:`setup_logging` with the settings' log level
(``PROCTOR_LOG_LEVEL``), so every process writes the same fields a log pipeline can
parse, with the current trace and span ids when a span is active.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace

#: client libraries that log a line per request at INFO
QUIET = {"httpx": "WARNING", "httpcore": "WARNING"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the current trace and span ids when there is a span."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            out["trace_id"] = f"{ctx.trace_id:032x}"
            out["span_id"] = f"{ctx.span_id:016x}"
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: str, levels: Mapping[str, str] | None = None) -> None:
    """JSON lines on stderr at ``level``; ``levels`` sets named loggers apart (e.g. a
    receiver's ``proctor`` logger at INFO under a WARNING root)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name, named_level in {**QUIET, **(levels or {})}.items():
        logging.getLogger(name).setLevel(named_level)


def logging_config(level: str) -> dict[str, Any]:
    """``logging.config.dictConfig`` form of :func:`setup_logging` (what Faust's worker takes)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"level": level, "handlers": ["stderr"]},
    }
