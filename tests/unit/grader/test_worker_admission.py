"""The worker asks its admission check about every decoded record: a refusal comes back
as is, an unknown platform is re-checked after a roster re-read (off the loop), and a
roster that cannot be read is retried rather than blamed on the record."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from services.contract.admission import RecordFacts, Refusal
from services.contract.dlq import RawRecord
from services.contract.wire import WireCodec, registry_client
from services.core.events import Event
from services.errors import StackError
from services.grader import app as app_module
from services.grader.app import GraderWorker
from services.grader.settings import GraderSettings

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


def _worker(tmp_path: Path, admission: Any) -> GraderWorker:
    settings = GraderSettings(data_dir=str(tmp_path), topic_prefix="")
    codec = WireCodec(registry_client("http://127.0.0.1:9"), topic_prefix="")
    return GraderWorker(
        settings,
        None,
        codec,
        lambda: None,
        lambda: None,
        admission=admission,  # type: ignore[arg-type, return-value]
    )


def test_facts_and_a_refusal(tmp_path: Path) -> None:
    refusal = Refusal("unauthenticated", "no MAC")
    admission = Admission(refusal, [])
    worker = _worker(tmp_path, admission)
    assert asyncio.run(worker._admit(EVENT, RAW)) == refusal
    facts = admission.facts[0]
    assert (facts.topic, facts.offset, facts.key, facts.broker_ts_ms) == (
        "platform.observability",
        7,
        b"basecamp-x",
        1_790_000_000_000,
    )
    assert list(facts.headers) == [("h", b"1")] and admission.rechecks == 0


def test_unknown_platform_rechecked_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "RETRY_S", 0.01)
    admission = Admission(
        Refusal("unknown_platform", "not in the roster"), [StackError("broker down"), None]
    )
    worker = _worker(tmp_path, admission)
    assert asyncio.run(worker._admit(EVENT, RAW)) is None
    assert admission.rechecks == 2
