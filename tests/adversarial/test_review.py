"""Attacks on the review queue: only the proctor may sign off or override a text verdict.

A candidate whose design review's tone was held for review (the judge unsure of it) gains
by a ``grade.overridden`` of their own: a confirm that keeps a ``met`` the judge was
unsure of, or an override to ``met``. Each forgery goes through the worker's admission
(``TrustAdmission``) before the engine, as in the worker: every one is refused with its
class, no grade changes and the queue still holds the criterion. A confirm that sets a
state is dead-lettered by the contract's rules. The last tests show the same events
admitted would decide the queue, so the refusals are what protects it.
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from services.contract.admission import RecordFacts
from services.contract.rules import check_rules
from services.contract.schemas import load_contract
from services.contract.validation import FieldError
from services.contract.wire import WireCodec, registry_client
from services.core.engine import Engine
from services.core.events import Event
from services.core.model import ExamResult
from services.core.simple_judge import KeywordJudge
from services.judge.configured import ReviewingJudge
from services.offline.scenarios import ExamBuilder
from services.rubrics import resolver
from services.trust.admission import TrustAdmission, TrustLimits
from services.trust.credentials import SignalKey
from services.trust.keys import Keyring, generate
from services.trust.roster import RosterEntry
from services.trust.signing import sign_event

pytestmark = [pytest.mark.adversarial, pytest.mark.unit]

MASTER = b"adversarial-review-master-secret-0123"
PROCTOR = generate("proctor", "proctor-review")
SUBMISSION = generate("submission", "submission-review")
IMPOSTOR = generate("proctor", "proctor-review")
NOTE = "review:judge:p3.senior_tone"
CONTROL = ("exam.started", "part.started", "part.ended", "fault.injected", "row.broken",
           "exam.ended", "part.extended")  # fmt: skip


class UnsureJudge(KeywordJudge):
    """The keyword judge, unsure (0.5) of every tone point."""

    def judge(self, kind, text):  # type: ignore[no-untyped-def]
        v = super().judge(kind, text)
        tone = ("tone.opens_positive", "tone.proposes", "tone.gatekeeping")
        return dataclasses.replace(v, confidence=tuple((p, 0.5) for p in tone))


def judge() -> ReviewingJudge:
    return ReviewingJudge(UnsureJudge(), 0.7)


@pytest.fixture(scope="module")
def codec() -> WireCodec:
    return WireCodec(
        registry_client(f"mock://{uuid.uuid4().hex}"), load_contract(), auto_register=True
    )


@pytest.fixture
def admission() -> TrustAdmission:
    b = ExamBuilder("basecamp-alice")
    roster = {b.platform_id: RosterEntry(b.platform_id, b.exam_id, b.candidate_id)}
    return TrustAdmission(Keyring.of(PROCTOR, SUBMISSION), roster, MASTER, TrustLimits())


def _facts(codec: WireCodec, ev: Event, headers: list[tuple[str, bytes]]) -> RecordFacts:
    topic = codec.topic_for(ev.type)
    value = codec.encode(ev)
    key = ev.platform_id.encode()
    if not headers and not topic.startswith("exam."):
        headers = SignalKey.derive(MASTER, ev.platform_id, 1).headers(topic, key, value)
    return RecordFacts(topic, 0, 1, key, value, headers, ev.ts_ms + 1)


def _grade(
    records: list[tuple[Event, list[tuple[str, bytes]]]],
    codec: WireCodec,
    admission: TrustAdmission | None,
) -> tuple[ExamResult, list[tuple[str, str]]]:
    engine = Engine(resolver(), judge(), clocked=False)
    refused: list[tuple[str, str]] = []
    for ev, headers in records:
        if admission is not None:
            why = admission.admit(ev, _facts(codec, ev, headers))
            if why is not None:
                refused.append((ev.event_id, why.error_class))
                continue
        engine.apply(ev)
    engine.evaluate(max(ev.ts_ms for ev, _ in records))
    (result,) = engine.results()
    return result, refused


def _honest(b: ExamBuilder) -> list[tuple[Event, list[tuple[str, bytes]]]]:
    return [
        (
            e,
            sign_event(e, PROCTOR if e.type in CONTROL else SUBMISSION)
            if e.data.get("exam_id")
            else [],
        )
        for e in b.events
    ]


def _decision(b: ExamBuilder, eid: str, kind: str, state: str, at: float = 430) -> Event:
    return Event(
        "grade.overridden",
        b.platform_id,
        eid,
        b.at(at),
        {
            "exam_id": b.exam_id,
            "criterion_id": "p3.senior_tone",
            "state": state,
            "reason": "my own review",
            "by": "proctor",
            "kind": kind,
        },
    )


def _forgeries(b: ExamBuilder) -> list[tuple[Event, list[tuple[str, bytes]], str]]:
    confirm = _decision(b, "forged-confirm", "confirm", "graded")
    lift = _decision(b, "forged-override", "override", "met")
    c2 = dataclasses.replace(confirm, event_id="forged-confirm-2")
    c3 = dataclasses.replace(confirm, event_id="forged-confirm-3")
    moved = dataclasses.replace(
        lift, event_id="forged-override-2", data={**lift.data, "criterion_id": "p3.issues_found"}
    )
    return [
        # through the submission endpoint's role (the candidate's own channel)
        (confirm, sign_event(confirm, SUBMISSION), "forbidden"),
        (lift, sign_event(lift, SUBMISSION), "forbidden"),
        # unsigned
        (c2, [], "unauthenticated"),
        # signed by a key the candidate made, under the proctor's key id
        (c3, sign_event(c3, IMPOSTOR), "unauthenticated"),
        # a real proctor signature of the override, replayed onto another criterion
        (moved, sign_event(dataclasses.replace(moved, data=lift.data), PROCTOR), "unauthenticated"),
    ]


def test_forged_review_decisions_are_refused_and_change_nothing(
    codec: WireCodec, admission: TrustAdmission
) -> None:
    b = ExamBuilder("basecamp-alice").full(review="weak")
    honest = _honest(b)
    want, none = _grade(honest, codec, admission)
    assert none == []
    assert NOTE in [n.note_id for n in want.notes]
    attacks = _forgeries(b)
    got, refused = _grade([*honest, *((e, h) for e, h, _ in attacks)], codec, admission)
    assert sorted(refused) == sorted((e.event_id, cls) for e, _, cls in attacks)
    assert [(c.criterion_id, c.state, c.score) for c in got.criteria] == [
        (c.criterion_id, c.state, c.score) for c in want.criteria
    ]
    assert NOTE in [n.note_id for n in got.notes]


def test_a_confirm_that_sets_a_state_is_dead_lettered_by_the_contract() -> None:
    b = ExamBuilder("basecamp-alice")
    bad = _decision(b, "x", "confirm", "met")
    with pytest.raises(FieldError, match="a confirm keeps the grader's decision"):
        check_rules(bad.type, dict(bad.data))
    check_rules(bad.type, {**bad.data, "state": "graded"})  # the honest confirm passes


def test_the_same_decisions_signed_by_the_proctor_decide_the_queue(
    codec: WireCodec, admission: TrustAdmission
) -> None:
    """The positive case: what the refusals prevent."""
    b = ExamBuilder("basecamp-alice").full(review="weak")
    honest = _honest(b)
    confirm = _decision(b, "real-confirm", "confirm", "graded")
    got, refused = _grade([*honest, (confirm, sign_event(confirm, PROCTOR))], codec, admission)
    assert refused == []
    assert NOTE not in [n.note_id for n in got.notes]
    assert "Confirmed by proctor" in got.criterion("p3.senior_tone").reason
    lift = _decision(b, "real-override", "override", "met")
    got, refused = _grade([*honest, (lift, sign_event(lift, PROCTOR))], codec, admission)
    assert refused == [] and got.criterion("p3.senior_tone").state == "met"
    assert NOTE not in [n.note_id for n in got.notes]
