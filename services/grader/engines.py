"""The grading core's engine, as the worker drives it (one engine per platform).

Kept apart from the worker so the worker never depends on how the core names things: this
is the only module that imports the core's engine.
"""

from __future__ import annotations

from services.core.engine_store import EngineStore as CoreEngineStore
from services.core.exam_state import Limits
from services.grader.engine_api import EngineStore
from services.judge.configured import configured_judge
from services.judge.default import default_judge
from services.rubrics import resolver
from services.settings import JudgeSettings


def core_engine_store(
    rubric_version: str | None = None,
    state_max_bytes: int | None = None,
    judge: JudgeSettings | None = None,
) -> EngineStore:
    """The EngineStore of ``services.core``: shipped rubrics, the configured text judge
    (``judge``: offline or a language model, with the review threshold; None: the
    default offline judge), clocked engines, held state bounded to ``state_max_bytes``
    per platform."""
    limits = Limits.within(state_max_bytes) if state_max_bytes is not None else None
    store: EngineStore = CoreEngineStore(
        resolver(),
        configured_judge(judge) if judge is not None else default_judge(),
        rubric_version=rubric_version,
        limits=limits,
    )
    return store
