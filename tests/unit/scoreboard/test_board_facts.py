"""The columns the proctor's pages read: the engine's transitions carry the part window and
the fault (not text to parse), the rows keep them through their JSON form, and the
collector watch keeps each platform's collectors' latest heartbeat."""

from __future__ import annotations

from typing import Any

import pytest

from services.cohort.lifecycle import extend
from services.core.engine import Engine
from services.core.events import SourcePosition
from services.core.simple_judge import KeywordJudge
from services.errors import RecordDecodeError
from services.grader.row_table import to_arrow, to_arrow_by_row
from services.grader.rows import TransitionRow, to_row
from services.offline.scenarios import ExamBuilder
from services.rubrics import resolver
from services.scoreboard.health import CollectorWatch
from services.trust.roster import RosterEntry

pytestmark = pytest.mark.unit

MIN = 60_000


def _graded(extra_minutes: int) -> tuple[ExamBuilder, list[Any]]:
    b = ExamBuilder("basecamp-x", exam_id="ex-x")
    b.full("trino", "stale_statistics")
    # Part 1 left to its time box (the builder also ends it at minute 181)
    events = [e for e in b.events if not (e.type == "part.ended" and e.data["part"] == 1)]
    if extra_minutes:
        entry = RosterEntry("basecamp-x", "ex-x", "x")
        events += extend(entry, 1, extra_minutes, "VPN outage", b.at(100))
    engine = Engine(resolver(), KeywordJudge())
    out = engine.apply_many(sorted(events, key=lambda e: (e.ts_ms, e.event_id)))
    out += engine.evaluate(max(e.ts_ms for e in events) + 60 * MIN)
    return b, out


def test_transitions_carry_the_part_window_with_extensions_and_the_fault() -> None:
    b, plain = _graded(0)
    _, extended = _graded(15)
    started = {int(e.data["part"]): e.ts_ms for e in b.events if e.type == "part.started"}
    fault = next(e for e in b.events if e.type == "fault.injected")
    last_p1 = [t for t in plain if t.part == "1"][-1].facts
    assert last_p1.part_opened_ms == started[1]
    ext = [t for t in extended if t.part == "1"][-1].facts
    assert ext.part_extended_minutes == 15
    assert ext.part_closes_ms - last_p1.part_closes_ms == 15 * MIN  # type: ignore[operator]
    p2 = [t for t in plain if t.part == "2"][-1].facts
    assert (p2.fault_layer, p2.fault_kind, p2.fault_ms) == (
        "trino",
        "stale_statistics",
        fault.ts_ms,
    )
    assert p2.part_opened_ms == fault.ts_ms  # Part 2 opens on the fault
    overall = [t for t in plain if t.part == "overall"][-1].facts
    assert overall.part_opened_ms is None and overall.fault_kind == "stale_statistics"
    # the minutes to root cause the view computes: the on-time criterion's decision time
    found = [t for t in plain if t.criterion_id == "p2.root_cause_90min"][-1]
    assert found.state == "met"
    assert 0 < (found.event_ts_ms - fault.ts_ms) / MIN <= 90


def test_rows_keep_the_facts_through_json_and_arrow() -> None:
    _, out = _graded(15)
    t = [t for t in out if t.part == "1"][-1]
    row = to_row(t, 7, SourcePosition("platform.x", 0, 3), None, 1)
    again = TransitionRow.from_json_obj(row.to_json_obj())
    assert again.facts == t.facts
    for table in (to_arrow([row]), to_arrow_by_row([row])):
        got = table.to_pylist()[0]
        assert got["part_extended_minutes"] == 15
        assert got["part_closes_at"].timestamp() * 1000 == t.facts.part_closes_ms
        assert got["fault_kind"] == "stale_statistics"
    old = row.to_json_obj()
    del old["facts"]  # a pending record written before the facts existed
    assert TransitionRow.from_json_obj(old).facts.part_opened_ms is None


class _Msg:
    def __init__(self, value: Any) -> None:
        self._value = value

    def error(self) -> None:
        return None

    def value(self) -> Any:
        return self._value


class _Consumer:
    def __init__(self, batches: list[list[_Msg]]) -> None:
        self.batches = batches

    def consume(self, n: int, timeout: float) -> list[_Msg]:
        return self.batches.pop(0) if self.batches else []


class _Event:
    def __init__(self, platform: str, ts: int, data: dict[str, Any]) -> None:
        self.platform_id, self.ts_ms, self.data = platform, ts, data


def _decode(m: _Msg) -> Any:
    if m.value() is None:
        raise RecordDecodeError("tombstone", "corrupt_bytes")
    return _Event(*m.value())


def test_the_collector_watch_keeps_the_latest_beat_by_event_time() -> None:
    beats = [
        _Msg(("p1", 1000, {"collector": "flink", "healthy": True, "source": "rest"})),
        _Msg(("p1", 3000, {"collector": "flink", "healthy": False, "error": "timeout",
                           "error_kind": "proctor_side"})),
        _Msg(("p1", 2000, {"collector": "flink", "healthy": True})),  # late: older
        _Msg(None),
        _Msg(("p1", 2500, {"collector": "", "healthy": True})),  # names no collector
        _Msg(("p2", 900, {"collector": "trino", "healthy": True})),
    ]  # fmt: skip
    watch = CollectorWatch(_Consumer([beats]), _decode, "platform.collectors")  # type: ignore[arg-type]
    watch._assigned = True  # no broker here: the consumer is handed its records
    assert watch.poll(budget_s=2) == 5
    assert watch.undecodable == 1
    rows = {(r.platform_id, r.collector): r for r in watch.rows()}
    assert set(rows) == {("p1", "flink"), ("p2", "trino")}
    flink = rows[("p1", "flink")]
    assert (flink.last_ms, flink.healthy, flink.error, flink.error_kind) == (
        3000, False, "timeout", "proctor_side"
    )  # fmt: skip
    assert flink.heartbeats == 3


def test_a_column_a_newer_version_added_is_written_as_nulls() -> None:
    import pyarrow as pa

    from services.grader.row_table import ARROW_SCHEMA

    _, out = _graded(0)
    row = to_row(out[0], 1, SourcePosition("platform.x", 0, 3), None, 1)
    wider = ARROW_SCHEMA.append(pa.field("confidence", pa.float64(), nullable=True))
    got = to_arrow([row], wider).to_pylist()[0]
    assert got["confidence"] is None and got["criterion_id"] == row.criterion_id
    required = ARROW_SCHEMA.append(pa.field("must_have", pa.float64(), nullable=False))
    with pytest.raises(KeyError):
        to_arrow([row], required)
