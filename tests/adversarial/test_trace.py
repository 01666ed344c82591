"""Attacks through a record's W3C trace context: each must end with no grade changed.

A sender controls its records' headers. A ``traceparent`` that is malformed, duplicated,
huge, or a copy of another record's (to blur the audit trail) must grade exactly as
the same records without one: the same transitions (ids, states, scores) in the same
order, and only the trace columns differ. (On the real stack, with dead letters and
Trino: tests/integration/test_grader_trace.py.)
"""

from __future__ import annotations

import itertools
import os

import pytest

from services.contract.jsonl import read_jsonl
from services.core.engine_store import EngineStore
from services.core.events import Event, SourcePosition
from services.grader.grading import PartitionGrader
from services.grader.rows import NO_TRACE, TransitionRow
from services.grader.telemetry import trace_id_of
from services.judge.default import default_judge
from services.rubrics import resolver
from services.stack.config import REPO_ROOT

pytestmark = [pytest.mark.adversarial, pytest.mark.unit]

SCENARIO = REPO_ROOT / "tests" / "scenarios" / "p2_cdc_dropped_events.jsonl"
GOOD = f"00-{'4bf92f3577b34da6a3ce929d0e0e4736'}-{'00f067aa0ba902b7'}-01".encode()

ATTACKS: dict[str, list[tuple[str, bytes | None]]] = {
    "garbage": [("traceparent", b"\x00\xff not a trace")],
    "one megabyte": [("traceparent", b"00-" + b"a" * 1_000_000)],
    "one megabyte after a valid prefix": [("traceparent", GOOD + b"-" + b"x" * 1_000_000)],
    "two conflicting": [("traceparent", GOOD), ("traceparent", GOOD.replace(b"4b", b"5b"))],
    "none value": [("traceparent", None)],
    "another record's trace": [("traceparent", GOOD)],
}


def _grade(
    events: list[Event], headers: list[tuple[str, bytes | None]] | None
) -> list[TransitionRow]:
    store = EngineStore(resolver(), default_judge())
    graders: dict[int, PartitionGrader] = {}
    offsets: dict[tuple[str, int], int] = {}
    rows: list[TransitionRow] = []
    for e in events:
        p, topic = sum(e.platform_id.encode()) % 3, e.type
        offset = offsets[(topic, p)] = offsets.get((topic, p), -1) + 1
        grader = graders.setdefault(p, PartitionGrader(p, store, clock_ms=lambda: 0))
        trace = NO_TRACE if headers is None else (trace_id_of(headers), None)
        rows += grader.handle(e, SourcePosition(topic, p, offset), trace).rows
    return rows


def _grades(rows: list[TransitionRow]) -> list[tuple[object, ...]]:
    return [
        (r.transition_id, r.exam_id, r.criterion_id, r.state, r.score, r.max_score, r.source)
        for r in rows
    ]


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return list(read_jsonl(SCENARIO))


@pytest.fixture(scope="module")
def plain(events: list[Event]) -> list[TransitionRow]:
    return _grade(events, None)


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_traceparent_changes_no_grade(
    attack: str, events: list[Event], plain: list[TransitionRow]
) -> None:
    attacked = _grade(events, ATTACKS[attack])
    assert plain and _grades(attacked) == _grades(plain)
    expected = "4bf92f3577b34da6a3ce929d0e0e4736" if attack == "another record's trace" else None
    assert {r.trace_id for r in attacked} == {expected}


def test_a_huge_or_crowded_header_list_is_read_in_one_pass() -> None:
    """A megabyte of traceparent is refused (the pattern is anchored, one pass, no
    backtracking over the value); a valid one among a thousand other headers is found."""
    for headers in itertools.islice(ATTACKS.values(), 1, 3):
        assert trace_id_of(headers) is None
    many = [("x-" + os.urandom(4).hex(), b"v") for _ in range(1_000)]
    assert trace_id_of([*many, ("traceparent", GOOD)]) == "4bf92f3577b34da6a3ce929d0e0e4736"
