"""The grading core's engine, as the worker drives it (one engine per platform).

Kept apart from the worker so the worker never depends on how the core names things: this
is the only module that imports the core's engine.
"""

from __future__ import annotations

from services.core.engine_store import EngineStore as CoreEngineStore
from services.grader.grading import EngineStore


def core_engine_store(rubric_version: str | None = None) -> EngineStore:
    """The EngineStore of ``services.core``: shipped rubrics, the default text judge."""
    store: EngineStore = CoreEngineStore(rubric_version=rubric_version)
    return store
