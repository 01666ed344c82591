"""A heartbeat that waited for its exam.started keeps whose failure it reports.

A heartbeat delivered before the exam.started that covers it is held with only what
coverage reads; its ``error_kind`` is part of that: a ``platform`` error (the candidate's
service failed) is evidence, not blindness, whether it was held or not. (Held without
it, it read as a proctor-side error and turned p1.zero_manual_apply from met to unknown
in some delivery orders only.)
"""

from __future__ import annotations

import pytest

from services.core.engine import Engine
from services.offline.scenarios import ExamBuilder

pytestmark = pytest.mark.unit


def test_a_held_platform_error_is_evidence_as_when_it_was_not_held(rubrics, judge) -> None:
    b = ExamBuilder("basecamp-alice").full()
    b.heartbeats(0.75, ["k8s-audit"], healthy=False, error_kind="platform")
    beat = b.events[-1]
    results = []
    for first in (False, True):  # the heartbeat after its exam.started, then before it
        engine = Engine(rubrics, judge)
        rest = sorted((e for e in b.events if e is not beat), key=lambda e: e.ts_ms)
        for ev in [beat, *rest] if first else sorted(b.events, key=lambda e: e.ts_ms):
            engine.apply(ev)
        engine.evaluate(b.at(430))
        results.append(engine.results()[0].criterion("p1.zero_manual_apply"))
    assert engine.audit.claimed >= 1  # the second run did hold and claim it
    assert [(c.state, c.reason) for c in results[1:]] == [(results[0].state, results[0].reason)]
    assert results[0].state == "met"
