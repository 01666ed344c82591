"""The batch pipeline asks its admission check about every decoded record: a refusal
comes back as is, an unknown platform is re-checked after a roster re-read (off the
loop), and a roster that cannot be read is retried rather than blamed on the record."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from opentelemetry.trace import NoOpTracer

from services.contract.admission import RecordFacts, Refusal
from services.contract.dlq import RawRecord
from services.core.events import Event
from services.errors import StackError
from services.grader import pipeline as pipeline_module
from services.grader.pipeline import BatchPipeline, facts_of
from services.grader.rewind import RewindPolicy
from services.grader.telemetry import Metrics

pytestmark = pytest.mark.unit

EVENT = Event("tool.used", "basecamp-x", "e1", 1_790_000_000_000, {})
RAW = RawRecord(
    "platform.observability", 0, 7, b"basecamp-x", b"v", (("h", b"1"),), 1_790_000_000_000
)


class Admission:
    def __init__(self, first: Refusal | None, later: list[Any]) -> None:
        self.first = first
        self.later = later
        self.facts: list[RecordFacts] = []
        self.rechecks = 0

    def admit(self, event: Event, facts: RecordFacts) -> Refusal | None:
        self.facts.append(facts)
        return self.first

    def admit_after_refresh(self, event: Event, facts: RecordFacts) -> Refusal | None:
        self.rechecks += 1
        outcome = self.later.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome  # type: ignore[no-any-return]


def _pipeline(admission: Any) -> BatchPipeline:
    """Only the admission matters here: the other rooms are never reached."""
    return BatchPipeline(
        None,  # type: ignore[arg-type]
        admission,
        None,  # type: ignore[arg-type]
        RewindPolicy(),
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        Metrics(),
        ThreadPoolExecutor(1),
        NoOpTracer(),
    )


def test_facts_and_a_refusal() -> None:
    refusal = Refusal("unauthenticated", "no MAC")
    admission = Admission(refusal, [])
    pipeline = _pipeline(admission)
    assert asyncio.run(pipeline._admit(EVENT, facts_of(RAW))) == refusal
    facts = admission.facts[0]
    assert (facts.topic, facts.offset, facts.key, facts.broker_ts_ms) == (
        "platform.observability",
        7,
        b"basecamp-x",
        1_790_000_000_000,
    )
    assert list(facts.headers) == [("h", b"1")] and admission.rechecks == 0


def test_unknown_platform_rechecked_and_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline_module, "RETRY_S", 0.01)
    admission = Admission(
        Refusal("unknown_platform", "not in the roster"), [StackError("broker down"), None]
    )
    pipeline = _pipeline(admission)
    assert asyncio.run(pipeline._admit(EVENT, facts_of(RAW))) is None
    assert admission.rechecks == 2
