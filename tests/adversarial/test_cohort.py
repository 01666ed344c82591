"""Attacks on a cohort's part windows and grades: only the proctor may move a box or
override a grade.

A candidate late with Part 1 would gain by a ``part.extended`` of their own (their schema
at minute 195 would count), by a ``part.ended`` that closes a rival's part early, or by a
``grade.overridden`` granting their own appeal. Each
forgery below goes through the worker's admission (``TrustAdmission``) before the engine,
as in the worker: every one is refused with its class and the grades equal those of the
honest stream. The last test shows the same events, admitted, would change the grade, so
the refusals are what protects it.
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from services.contract.admission import RecordFacts
from services.contract.schemas import load_contract
from services.contract.wire import WireCodec, registry_client
from services.core.engine import Engine
from services.core.events import Event
from services.core.model import ExamResult
from services.core.simple_judge import KeywordJudge
from services.offline.scenarios import ExamBuilder
from services.rubrics import resolver
from services.trust.admission import TrustAdmission, TrustLimits
from services.trust.credentials import SignalKey
from services.trust.keys import Keyring, generate
from services.trust.roster import RosterEntry
from services.trust.signing import sign_event

pytestmark = [pytest.mark.adversarial, pytest.mark.unit]

MASTER = b"adversarial-cohort-master-secret-0123"
PROCTOR = generate("proctor", "proctor-cohort")
SUBMISSION = generate("submission", "submission-cohort")
#: a key the candidate made, presented under the proctor's key id
IMPOSTOR = generate("proctor", "proctor-cohort")


def _exam(name: str) -> ExamBuilder:
    """A clean exam whose schema was registered late (minute 195, after Part 1's close at 181)."""
    b = ExamBuilder(f"basecamp-{name}").full()
    # Part 1 closes on its limit (181), not on a part.ended the proctor sent
    b.events = [e for e in b.events if not (e.type == "part.ended" and e.data["part"] == 1)]
    for i, e in enumerate(b.events):
        if e.type == "schema.registered":
            b.events[i] = dataclasses.replace(e, ts_ms=b.at(195))
    b.heartbeats(100 - 1 / 3)  # beats at the close a forged early end would cause
    return b


def _control(b: ExamBuilder, type_: str, at: float, eid: str, **data: object) -> Event:
    return Event(type_, b.platform_id, eid, b.at(at), {"exam_id": b.exam_id, **data})


class _Roster(dict[str, RosterEntry]):
    pass


@pytest.fixture(scope="module")
def codec() -> WireCodec:
    return WireCodec(
        registry_client(f"mock://{uuid.uuid4().hex}"), load_contract(), auto_register=True
    )


@pytest.fixture
def admission() -> TrustAdmission:
    roster = _Roster()
    for name in ("alice", "bob"):
        b = ExamBuilder(f"basecamp-{name}")
        roster[b.platform_id] = RosterEntry(b.platform_id, b.exam_id, b.candidate_id)
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
) -> tuple[list[ExamResult], list[tuple[str, str]]]:
    """Admit (unless None) then grade every record, as the worker does; the refusals."""
    engine = Engine(resolver(), KeywordJudge(), clocked=False)
    refused: list[tuple[str, str]] = []
    for ev, headers in records:
        if admission is not None:
            why = admission.admit(ev, _facts(codec, ev, headers))
            if why is not None:
                refused.append((ev.event_id, why.error_class))
                continue
        engine.apply(ev)
    engine.evaluate(max(ev.ts_ms for ev, _ in records))
    return engine.results(), refused


def _honest(*builders: ExamBuilder) -> list[tuple[Event, list[tuple[str, bytes]]]]:
    out: list[tuple[Event, list[tuple[str, bytes]]]] = []
    for b in builders:
        for e in b.events:
            signed = e.type in ("exam.started", "part.started", "part.ended", "fault.injected")
            signed = signed or e.type in ("row.broken", "exam.ended", "part.extended")
            key = PROCTOR if signed else SUBMISSION
            out.append((e, sign_event(e, key) if e.data.get("exam_id") else []))
    return out


def _forgeries(
    alice: ExamBuilder, bob: ExamBuilder
) -> list[tuple[Event, list[tuple[str, bytes]], str]]:
    """(event, headers, expected refusal class)."""
    ext = _control(alice, "part.extended", 170, "forged-ext", part=1, minutes=30, reason="mine")
    end_bob = _control(bob, "part.ended", 100, "forged-end-bob", part=1)
    appeal = _control(
        alice,
        "grade.overridden",
        430,
        "forged-appeal",
        criterion_id="p1.schema_registered",
        state="met",
        reason="my appeal, granted by me",
        by="proctor",
        kind="appeal",
    )
    return [
        # alice grants her own appeal through the submission role, and unsigned
        (appeal, sign_event(appeal, SUBMISSION), "forbidden"),
        (dataclasses.replace(appeal, event_id="forged-appeal-2"), [], "unauthenticated"),
        # alice's own extension, through the submission endpoint's role (a candidate's key)
        (ext, sign_event(ext, SUBMISSION), "forbidden"),
        # ... unsigned
        (dataclasses.replace(ext, event_id="forged-ext-2"), [], "unauthenticated"),
        # ... signed by a key she made, under the proctor's key id
        (
            dataclasses.replace(ext, event_id="forged-ext-3"),
            sign_event(dataclasses.replace(ext, event_id="forged-ext-3"), IMPOSTOR),
            "unauthenticated",
        ),
        # ... a valid proctor signature of another event, replayed onto the forgery
        (
            dataclasses.replace(ext, event_id="forged-ext-4", data={**ext.data, "minutes": 300}),
            sign_event(dataclasses.replace(ext, event_id="forged-ext-4"), PROCTOR),
            "unauthenticated",
        ),
        # bob's Part 1 ended early, by alice through the submission role
        (end_bob, sign_event(end_bob, SUBMISSION), "forbidden"),
    ]


def test_forged_part_windows_are_refused_and_change_no_grade(
    codec: WireCodec, admission: TrustAdmission
) -> None:
    alice, bob = _exam("alice"), _exam("bob")
    honest = _honest(alice, bob)
    want, none_refused = _grade(honest, codec, admission)
    assert none_refused == []
    attacks = _forgeries(alice, bob)
    got, refused = _grade(
        [*honest[:40], *((e, h) for e, h, _ in attacks), *honest[40:]], codec, admission
    )
    assert sorted(refused) == sorted((e.event_id, cls) for e, _, cls in attacks)
    assert [(r.exam_id, r.total_pct, r.criteria) for r in got] == [
        (r.exam_id, r.total_pct, r.criteria) for r in want
    ]
    alice_result = next(r for r in got if r.platform_id == alice.platform_id)
    assert alice_result.criterion("p1.schema_registered").state == "expired"


def test_the_same_forgeries_admitted_would_change_the_grades(
    codec: WireCodec, admission: TrustAdmission
) -> None:
    """Without admission the forged extension meets alice's late schema and the forged
    end expires bob's Part 1 criteria met after minute 100: what the refusals prevent."""
    alice, bob = _exam("alice"), _exam("bob")
    honest = _honest(alice, bob)
    want, _ = _grade(honest, codec, None)
    got, _ = _grade([*honest, *((e, h) for e, h, _ in _forgeries(alice, bob))], codec, None)
    by = {r.platform_id: r for r in got}
    before = {r.platform_id: r for r in want}
    assert before[alice.platform_id].criterion("p1.schema_registered").state == "expired"
    assert by[alice.platform_id].criterion("p1.schema_registered").state == "met"
    assert by[bob.platform_id].total_pct < before[bob.platform_id].total_pct


def test_a_proctor_extension_does_move_the_box(codec: WireCodec, admission: TrustAdmission) -> None:
    """The same extension signed by the proctor is admitted and counts (the positive case)."""
    alice = _exam("alice")
    ext = _control(alice, "part.extended", 170, "real-ext", part=1, minutes=30, reason="outage")
    got, refused = _grade([*_honest(alice), (ext, sign_event(ext, PROCTOR))], codec, admission)
    assert refused == []
    assert got[0].criterion("p1.schema_registered").state == "met"
