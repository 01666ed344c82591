"""The grading core's engine, as the worker drives it (one engine per platform).

Kept apart from the worker so the worker never depends on how the core names things: this
is the only module that imports the core's engine.
"""

from __future__ import annotations

from services.errors import ConfigError
from services.grader.grading import EngineStore


def core_engine_store() -> EngineStore:
    """The EngineStore of ``services.core``'s engine."""
    try:
        from services.core import engine as core_engine  # type: ignore[attr-defined]
    except ImportError as exc:
        raise ConfigError(
            "the grading core's engine (services.core.engine) is not available in this "
            f"checkout ({exc}); the worker needs it to grade"
        ) from exc
    store: EngineStore = core_engine.EngineStore()  # pragma: no cover - wired when the core lands
    return store
