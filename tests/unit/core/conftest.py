"""Fixtures of the grading-core tests: rubrics, the keyword judge, and grading helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from services.core.engine import RubricResolver
from services.core.events import Event
from services.core.model import ExamResult
from services.core.simple_judge import KeywordJudge
from services.offline.replay import replay_events
from services.rubrics import resolver

#: holds a shadow version 2 of y3-final (tests/scenarios/rubrics/y3-final/v2.yaml)
TEST_RUBRICS = Path(__file__).resolve().parents[2] / "scenarios" / "rubrics"

GradeAll = Callable[..., list[ExamResult]]
Grade = Callable[..., ExamResult]


@pytest.fixture(scope="session")
def rubrics() -> RubricResolver:
    return resolver(TEST_RUBRICS)


@pytest.fixture(scope="session")
def judge() -> KeywordJudge:
    return KeywordJudge()


@pytest.fixture
def grade_all(rubrics: RubricResolver, judge: KeywordJudge) -> GradeAll:
    def run(
        events: Iterable[Event], at_ms: int | None = None, version: str | None = None
    ) -> list[ExamResult]:
        return replay_events(
            list(events), rubrics, judge, at_ms=at_ms, rubric_version=version
        ).results

    return run


@pytest.fixture
def grade(grade_all: GradeAll) -> Grade:
    """Grade events holding exactly one exam; returns its result."""

    def run(
        events: Iterable[Event], at_ms: int | None = None, version: str | None = None
    ) -> ExamResult:
        results = grade_all(events, at_ms, version)
        assert len(results) == 1, [r.exam_id for r in results]
        return results[0]

    return run
