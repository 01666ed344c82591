"""A signal's id is remembered with its event and digested late: the answers must be
the eager digest's whatever path the remembered body took (held, digested because
the engine's bound was passed, written to state and read back)."""

from __future__ import annotations

from collections import deque

import pytest

from services.core import engine as engine_module
from services.core.engine import Engine, Limits, PlatformState, Recent, digest
from services.core.events import Event
from services.core.state_codec import platform_to_bytes, restore_platform
from services.offline.scenarios import ExamBuilder

pytestmark = pytest.mark.unit


def sig(eid: str, ts: int, rows: int, pid: str = "basecamp-alice") -> Event:
    return Event("cdc.offsets", pid, eid, ts, {"connector": "c", "rows": rows, "lag": 0})


def test_new_same_and_other_body_with_the_event_still_held() -> None:
    p, q = PlatformState("x"), deque[tuple[Recent, str]]()
    a = sig("e1", 1, 5)
    assert p.seen(a, Limits(), q) is None
    assert p.recent["e1"] is a  # not digested yet
    assert p.seen(sig("e1", 1, 5), Limits(), q) is True
    assert p.recent["e1"] == digest(a)  # digested on the repeat
    assert p.seen(sig("e1", 1, 6), Limits(), q) is False
    assert p.seen(sig("e1", 2, 5), Limits(), q) is False


def test_key_order_does_not_make_a_conflict() -> None:
    p, q = PlatformState("x"), deque[tuple[Recent, str]]()
    a = Event("cdc.offsets", "x", "e1", 1, {"a": 1, "b": 2})
    b = Event("cdc.offsets", "x", "e1", 1, {"b": 2, "a": 1})
    assert p.seen(a, Limits(), q) is None
    assert p.seen(b, Limits(), q) is True


def test_the_engine_bound_digests_the_oldest_held_events(monkeypatch) -> None:
    monkeypatch.setattr(engine_module, "UNDIGESTED", 3)
    p, q = PlatformState("x"), deque[tuple[Recent, str]]()
    events = [sig(f"e{i}", i, i) for i in range(6)]
    for ev in events:
        assert p.seen(ev, Limits(), q) is None
    assert len(q) == 3
    assert [type(p.recent[f"e{i}"]) for i in range(6)] == [int] * 3 + [Event] * 3
    assert p.recent["e0"] == digest(events[0])
    assert p.seen(sig("e0", 0, 0), Limits(), q) is True
    assert p.seen(sig("e1", 1, 99), Limits(), q) is False


def test_the_window_forgets_the_oldest_ids() -> None:
    p, q = PlatformState("x"), deque[tuple[Recent, str]]()
    limits = Limits(recent_ids=2)
    for i in range(3):
        p.seen(sig(f"e{i}", i, i), limits, q)
    assert list(p.recent) == ["e1", "e2"]
    assert p.seen(sig("e0", 0, 99), limits, q) is None  # forgotten: new again


def test_a_conflict_is_caught_after_the_state_is_written_and_read_back(rubrics, judge) -> None:
    b = ExamBuilder("basecamp-alice").full()
    live = Engine(rubrics, judge)
    live.apply_many(b.events)
    first = sig("dup-1", b.at(20), 5)
    live.apply(first)
    assert any(isinstance(v, Event) for v in live.platforms["basecamp-alice"].recent.values())
    state = platform_to_bytes(live, "basecamp-alice")
    assert all(type(v) is int for v in live.platforms["basecamp-alice"].recent.values())
    assert platform_to_bytes(live, "basecamp-alice") == state  # writing it is stable

    fresh = Engine(rubrics, judge)
    restore_platform(fresh, state)
    fresh.apply(sig("dup-1", b.at(20), 5))
    assert not fresh.conflict
    fresh.apply(sig("dup-1", b.at(20), 6))
    assert fresh.conflict and fresh.audit.conflicts == 1
    live.apply(sig("dup-1", b.at(20), 6))
    assert live.conflict
