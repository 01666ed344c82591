"""The grading core's engine, as the worker drives it (one engine per platform).

Kept apart from the worker so the worker never depends on how the core names things: this
is the only module that imports the core's engine.
"""

from __future__ import annotations

from services.core.engine_store import EngineStore as CoreEngineStore
from services.core.exam_state import Limits
from services.grader.engine_api import EngineStore
from services.judge.default import default_judge
from services.rubrics import resolver


def core_engine_store(
    rubric_version: str | None = None, state_max_bytes: int | None = None
) -> EngineStore:
    """The EngineStore of ``services.core``: shipped rubrics, the default text judge,
    clocked engines, held state bounded to ``state_max_bytes`` per platform."""
    limits = Limits.within(state_max_bytes) if state_max_bytes is not None else None
    store: EngineStore = CoreEngineStore(
        resolver(), default_judge(), rubric_version=rubric_version, limits=limits
    )
    return store
