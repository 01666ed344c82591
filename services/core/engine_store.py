"""Engines and their bytes, the way the stream worker keeps them: one engine per platform.

The worker's table maps a platform id to :meth:`EngineStore.dump` of that platform's
engine; :meth:`EngineStore.load` brings it back after a restart or a rebalance.
"""

from __future__ import annotations

from services.core.engine import Engine, Limits, RubricResolver
from services.core.state_codec import engine_from_bytes, engine_to_bytes
from services.core.textjudge import TextJudge
from services.errors import GradingError


class EngineStore:
    """Creates engines and moves their state to and from bytes.

    Engines are clocked by default (see :attr:`Engine.clocked`): the stream worker
    evaluates each at an honest clock. ``rubrics`` and ``judge`` are given at the edge
    (``services.grader.engines.core_engine_store``: the shipped rubric files and the
    default judge), so the core imports neither.
    """

    def __init__(
        self,
        rubrics: RubricResolver,
        judge: TextJudge,
        *,
        rubric_version: str | None = None,
        limits: Limits | None = None,
        clocked: bool = True,
    ) -> None:
        self.template = Engine(
            rubrics, judge, rubric_version=rubric_version, limits=limits, clocked=clocked
        )

    def new(self, platform_id: str) -> Engine:
        t = self.template
        return Engine(
            t.rubrics, t.judge, rubric_version=t.rubric_version, limits=t.limits, clocked=t.clocked
        )

    def dump(self, engine: object) -> bytes:
        if not isinstance(engine, Engine):
            raise GradingError(f"can only save a services.core Engine, not {type(engine).__name__}")
        return engine_to_bytes(engine)

    def load(self, data: bytes) -> Engine:
        return engine_from_bytes(data, self.template)
