"""Attacks on blindness: a candidate must not turn failed criteria into 'unknown'.

* The 94% -> 100% attack: make a receiver unhealthy (an oversized record the broker
  refuses) just before a time box closes, so the criteria it feeds that would expire
  become 'unknown' and leave the maximum. The receiver now reports that failure as the
  payload's (error_kind ``payload``): evidence, not blindness; the grade does not move.
* Switching API-server auditing off: no k8s.audit arrives, so "no manual kubectl apply"
  would be met by absence. The audit source's canary goes missing, the receiver's
  heartbeat says so (proctor-side) and the criterion is 'unknown' with that reason, for a
  proctor to look at, never met.

Each attack's heartbeats are made by the real receiver code (``Receiver._heartbeat``
after ``Receiver._unavailable`` or with the canary watch), then graded by the real core.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.collectors import k8s_audit, openlineage
from services.collectors.canary import CanaryWatch, watched
from services.collectors.webhook import Receiver, ReceiverSettings, WebhookSource, _Health
from services.core.events import Event
from services.core.model import ExamResult
from services.core.simple_judge import KeywordJudge
from services.exam_builder import ExamBuilder, render_jsonl
from services.offline.replay import replay_events
from services.rubrics import resolver
from services.stack.catalog import TRINO_CATALOG
from tests.integration.conftest import (  # noqa: F401  (fixtures of the real stack)
    iceberg_catalog,
    iceberg_namespace,
    trino_connection,
)
from tests.integration.grader.live import LiveExam, comparable, replay_json, settle, trino_scores

pytestmark = [pytest.mark.adversarial]
unit = pytest.mark.unit

RUBRICS = resolver(Path(__file__).resolve().parents[1] / "scenarios" / "rubrics")
PLATFORM = "basecamp-alice"
OTHER = "basecamp-bob"
#: Part 1 closes 181 minutes after exam.started
P1_CLOSE = 181
TOO_LARGE = (
    "cannot produce to platform.openlineage: KafkaError{code=MSG_SIZE_TOO_LARGE,val=10,"
    'str="Unable to produce message: Broker: Message size too large"}'
)


class _Codec:
    def schema_id(self, event_type: str) -> int:
        return 1


class _Producer:
    def poll(self, timeout_s: float) -> int:
        time.sleep(timeout_s)
        return 0

    def flush(self, timeout_s: float) -> int:
        return 0


class _Publisher:
    codec = _Codec()
    producer = _Producer()
    contract = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    watch = CanaryWatch(bound_s=120)
    sources = [openlineage.SOURCE, watched(k8s_audit.SOURCE, watch)]
    r = Receiver(sources, _Publisher(), None, ReceiverSettings(platforms=(PLATFORM, OTHER)))  # type: ignore[arg-type]
    r.canary = watch  # type: ignore[attr-defined]
    yield r
    r.sender.close(0.1)


def _source(r: Receiver, name: str) -> WebhookSource:
    return next(s for s in r.sources if s.name == name)


def _beat(r: Receiver, b: ExamBuilder, name: str, minutes: float) -> Event:
    """The heartbeat the receiver sends at exam minute ``minutes``, added to the exam."""
    pid = b.platform_id
    health = r.state.health.setdefault((name, pid), _Health())
    ev = r._heartbeat(_source(r, name), pid, health, b.at(minutes))
    health.error, health.error_kind = None, None
    b._seq += 1
    ev = Event(ev.type, pid, f"{pid}-hb-{b._seq:05d}", ev.ts_ms, ev.data)
    b.events.append(ev)
    return ev


def _grade(events: list[Event]) -> ExamResult:
    results = replay_events(events, RUBRICS, KeywordJudge()).results
    assert len(results) == 1
    return results[0]


def _lineage_fail(platform: str = PLATFORM) -> ExamBuilder:
    """An exam that fails p1.lineage_path: no lineage reaches the chart (about 94%)."""
    b = ExamBuilder(platform)
    b.start()
    b.part1(skip={"lineage_chart"})
    return b


def _finish(b: ExamBuilder) -> list[Event]:
    b.part2("trino", "stale_statistics")
    b.part3()
    b.finish()
    return b.events


def _oversized_events(receiver: Receiver, platform: str = PLATFORM) -> list[Event]:
    attacked = _lineage_fail(platform)
    # the candidate posts an event too large for the broker, again and again, up to the close
    for minute in (P1_CLOSE - 1.0, P1_CLOSE - 0.5, P1_CLOSE - 0.1):
        receiver._unavailable(_source(receiver, "openlineage"), platform, TOO_LARGE)
        beat = _beat(receiver, attacked, "openlineage", minute)
        assert beat.data["healthy"] is False and beat.data["error_kind"] == "payload"
    return _finish(attacked)


@unit
def test_an_oversized_record_before_the_close_does_not_raise_the_grade(
    receiver: Receiver,
) -> None:
    honest = _grade(_finish(_lineage_fail()))
    assert honest.criterion("p1.lineage_path").state == "expired"
    assert honest.total_pct < 100

    graded = _grade(_oversized_events(receiver))

    assert graded.criterion("p1.lineage_path").state == "expired"
    assert graded.total_pct == honest.total_pct
    assert graded.passed == honest.passed
    assert [n for n in graded.notes if n.kind == "blind"] == []


@unit
def test_the_same_failure_of_the_broker_itself_is_still_blindness(receiver: Receiver) -> None:
    """The guard is not 'never unknown': a broker that does not answer blinds the grader."""
    b = _lineage_fail()
    receiver._unavailable(
        _source(receiver, "openlineage"), PLATFORM, "1 of 1 records not acknowledged within 10s"
    )
    beat = _beat(receiver, b, "openlineage", P1_CLOSE - 0.1)
    assert beat.data["error_kind"] == "proctor_side"
    r = _grade(_finish(b))
    assert r.criterion("p1.lineage_path").state == "unknown"
    assert "p1.lineage_path" in [n.subject for n in r.notes if n.kind == "blind"]


def _audit_off_events(
    receiver: Receiver, back_on_at: float | None, platform: str = PLATFORM
) -> list[Event]:
    """A clean exam whose candidate switched auditing off at minute 30 (and applied by
    hand, unseen); the receiver's canary watch started with the exam."""
    watch: CanaryWatch = receiver.canary  # type: ignore[attr-defined]
    b = ExamBuilder(platform)
    watch.watch(platform, at_ms=b.at(0))
    b.start()
    b.part1()  # no manual apply is in the audit stream: auditing is off
    for minute in range(5, 30, 5):  # canaries seen while auditing was on
        assert watch.observe(platform, watch.issue(platform, at_ms=b.at(minute)))
    for minute in range(30, P1_CLOSE, 10):
        if back_on_at is not None and minute >= back_on_at:
            assert watch.observe(platform, watch.issue(platform, at_ms=b.at(minute)))
        _beat(receiver, b, "k8s-audit", minute + 0.5)
    _beat(receiver, b, "k8s-audit", P1_CLOSE - 0.3)
    return _finish(b)


def _audit_off(receiver: Receiver, back_on_at: float | None) -> ExamResult:
    return _grade(_audit_off_events(receiver, back_on_at))


@unit
@pytest.mark.parametrize("back_on_at", [None, 120])
def test_switching_auditing_off_does_not_keep_zero_manual_apply_met(
    receiver: Receiver, back_on_at: float | None
) -> None:
    r = _audit_off(receiver, back_on_at)
    c = r.criterion("p1.zero_manual_apply")
    assert c.state == "unknown", c.reason
    assert "auditing is off or the webhook is not delivering" in c.reason
    blind = [n for n in r.notes if n.kind == "blind"]
    assert [n.subject for n in blind] == ["p1.zero_manual_apply"]
    assert not r.passed or r.notes  # a proctor must look before it counts


@unit
def test_with_auditing_on_the_canary_keeps_the_criterion_met(receiver: Receiver) -> None:
    watch: CanaryWatch = receiver.canary  # type: ignore[attr-defined]
    b = ExamBuilder(PLATFORM)
    watch.watch(PLATFORM, at_ms=b.at(0))
    b.start()
    b.part1()
    for minute in range(5, P1_CLOSE, 10):
        assert watch.observe(PLATFORM, watch.issue(PLATFORM, at_ms=b.at(minute)))
        beat = _beat(receiver, b, "k8s-audit", minute + 0.5)
        assert beat.data["healthy"] is True and beat.data["error_kind"] is None
    r = _grade(_finish(b))
    assert r.criterion("p1.zero_manual_apply").state == "met"
    assert r.notes == ()


# ------------------------------------------------------------------ the real stack
@pytest.mark.integration
@pytest.mark.slow
def test_on_the_real_stack_the_worker_grades_both_attacks_as_the_replay(
    receiver: Receiver,
    kafka_bootstrap: str,
    registry_url: str,
    iceberg_namespace: str,  # noqa: F811
    trino_connection: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Both attacks through Kafka, the worker, Iceberg and Trino: the oversized-record
    exam is graded 'fail' with its expired criterion, the audit-off exam is 'review' with
    p1.zero_manual_apply unknown and an open review note saying why; all as the replay."""
    events = _oversized_events(receiver, PLATFORM) + _audit_off_events(receiver, None, OTHER)
    path = tmp_path / "attacks.jsonl"
    path.write_text(render_jsonl(events))
    expected = comparable(replay_json(path))
    live = LiveExam(kafka_bootstrap, registry_url, iceberg_namespace, tmp_path)
    try:
        live.publish(events)
        live.start_worker()
        got = settle(
            lambda: trino_scores(trino_connection, live.namespace), expected, live.procs, 240
        )
        assert got == expected
        cur = trino_connection.cursor()
        cur.execute(
            f"SELECT platform_id, max(status), max(open_reviews) FROM "
            f"{TRINO_CATALOG}.{live.namespace}.exam_scores GROUP BY platform_id "
            "ORDER BY platform_id"
        )
        assert cur.fetchall() == [[PLATFORM, "fail", 0], [OTHER, "review", 1]]
        cur.execute(
            f"SELECT platform_id, criterion_id, state, reason FROM "
            f"{TRINO_CATALOG}.{live.namespace}.criterion_transitions "
            "WHERE criterion_id LIKE 'review:%' ORDER BY seq"
        )
        latest = {(r[0], r[1]): (r[2], r[3]) for r in cur.fetchall()}
        open_notes = {k: v for k, v in latest.items() if v[0] == "unknown"}
        assert list(open_notes) == [(OTHER, "review:blind:p1.zero_manual_apply")]
        assert "auditing is off" in open_notes[(OTHER, "review:blind:p1.zero_manual_apply")][1]
        assert (
            expected[f"exam-2026-11-27-{OTHER.removeprefix('basecamp-')}"]["criteria"][
                "p1.zero_manual_apply"
            ][0]
            == "unknown"
        )
    finally:
        live.close()
        print(live.log_tails())
        with contextlib.suppress(Exception):
            trino_connection.cursor().execute(
                f"DROP VIEW IF EXISTS {TRINO_CATALOG}.{iceberg_namespace}.exam_scores"
            )
