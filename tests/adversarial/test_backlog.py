"""A whole backlog read at once shows no row the time-ordered stream does not (issue 13).

Three recordings (``p2_trino_stale_statistics``: alice, bob, carol; ``clean_pass`` as
dave; ``collector_blind`` as erin) are published at once before the worker starts, so
it reads a backlog, its topics in whatever order Faust fetches them. Every row of the
Iceberg transitions table, its whole history and not only the latest state, must be a
change the time-ordered stream makes: per (exam, criterion), each (previous state,
state) the table shows is one the ordered stream shows, the table's rows chain (each
starts where the one before ended), and the last is the replay's grade.

The ordered stream is graded here with the core's engines, one per platform, each event
in event-time order and each platform evaluated at its own latest event time (what the
worker's per-exam clocks give when every topic is read up to the same time). ``proctor
replay`` has no history (it feeds control events first), only final grades, which the
table must equal too.
"""

from __future__ import annotations

import itertools
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.contract.jsonl import parse_line
from services.core.engine import Limits
from services.core.engine_store import EngineStore
from services.core.events import Event
from services.judge.default import default_judge
from services.rubrics import resolver
from services.settings import load_settings
from services.stack.catalog import TRINO_CATALOG
from tests.conftest import TrustEnv
from tests.integration.grader.live import (
    SCENARIOS,
    LiveExam,
    comparable,
    replay_json,
    settle,
    trino_scores,
)

pytestmark = [pytest.mark.adversarial]
live_test = [pytest.mark.integration, pytest.mark.slow]

#: (recording, platform renames): three recordings, five platforms, no id shared
RECORDINGS: tuple[tuple[str, dict[str, str]], ...] = (
    ("p2_trino_stale_statistics.jsonl", {}),
    ("clean_pass.jsonl", {"alice": "dave"}),
    ("collector_blind.jsonl", {"alice": "erin"}),
)
#: a worker whose partitions' watermark is not aligned (tests/adversarial/unaligned_worker.py)
UNALIGNED = Path(__file__).with_name("unaligned_worker.py")

Key = tuple[str, str]  # (exam_id, criterion_id)


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the transitions table, as the check reads it."""

    exam_id: str
    criterion_id: str
    previous_state: str | None
    state: str
    seq: int


@dataclass(frozen=True, slots=True)
class History:
    """The ordered stream's changes: per (exam, criterion), the states in order (the
    first is the one before its first change) and the set of (from, to) pairs."""

    states: dict[Key, list[str | None]]
    pairs: dict[Key, set[tuple[str | None, str]]]

    def final(self, key: Key) -> str | None:
        return self.states[key][-1]


def recording(tmp: Path) -> tuple[Path, list[Event]]:
    """The three recordings as one file (platforms renamed), and its events."""
    lines: list[str] = []
    for name, renames in RECORDINGS:
        for line in (SCENARIOS / name).read_text().splitlines():
            for old, new in renames.items():
                line = line.replace(old, new)
            if line.strip():
                lines.append(line)
    path = tmp / "backlog.jsonl"
    path.write_text("\n".join(lines) + "\n")
    events = [parse_line(line) for line in lines]
    assert len({e.platform_id for e in events}) == 5
    assert len({e.event_id for e in events}) == len(events)
    return path, events


def ordered_history(events: Iterable[Event]) -> History:
    """The changes of the time-ordered stream, graded as the worker's engines grade:
    each platform's engine evaluated at its own clock before and after each of its
    events (the worker's bounded state, ``GraderSettings.state_max_bytes``, included)."""
    budget = load_settings({}).grader.state_max_bytes
    store = EngineStore(resolver(), default_judge(), limits=Limits.within(budget))
    engines: dict[str, Any] = {}
    clocks: dict[str, int] = {}
    states: dict[Key, list[str | None]] = {}
    pairs: dict[Key, set[tuple[str | None, str]]] = defaultdict(set)
    for ev in sorted(events, key=lambda e: (e.ts_ms, e.event_id)):
        pid = ev.platform_id
        engine = engines.get(pid) or engines.setdefault(pid, store.new(pid))
        before = clocks.get(pid, 0)
        changes = [*engine.evaluate(before), *engine.apply(ev)]
        clocks[pid] = max(before, ev.ts_ms)
        changes += engine.evaluate(clocks[pid])
        for t in changes:
            key = (t.exam_id, t.criterion_id)
            seen = states.setdefault(key, [t.previous_state])
            assert seen[-1] == t.previous_state, f"{key}: the engine's own changes do not chain"
            seen.append(t.state)
            pairs[key].add((t.previous_state, t.state))
    return History(states, dict(pairs))


def is_subsequence(short: Sequence[str | None], long: Sequence[str | None]) -> bool:
    it = iter(long)
    return all(any(s == x for x in it) for s in short)


def wrong_rows(rows: Iterable[Row], history: History) -> list[str]:
    """Every way the table's history departs from the ordered stream's (empty: none)."""
    by_key: dict[Key, list[Row]] = defaultdict(list)
    for row in rows:
        by_key[(row.exam_id, row.criterion_id)].append(row)
    problems: list[str] = []
    for key in sorted(by_key):
        table = sorted(by_key[key], key=lambda r: r.seq)
        if key not in history.states:
            problems.append(f"{key}: the ordered stream never changes it; the table has {table}")
            continue
        for row in table:
            if (row.previous_state, row.state) not in history.pairs[key]:
                problems.append(
                    f"{key}: {row.previous_state} -> {row.state} (seq {row.seq}) is not a "
                    f"change of the ordered stream {history.states[key]}"
                )
        for before, after in itertools.pairwise(table):
            if after.previous_state != before.state:
                problems.append(f"{key}: seq {after.seq} does not start where {before.seq} ended")
        seen = [table[0].previous_state, *(r.state for r in table)]
        if not is_subsequence(seen, history.states[key]):
            problems.append(
                f"{key}: the table's states {seen} are not in the order of the ordered "
                f"stream's {history.states[key]}"
            )
        if table[-1].state != history.final(key):
            problems.append(
                f"{key}: ends {table[-1].state}, the ordered stream {history.final(key)}"
            )
    for key in sorted(set(history.states) - set(by_key)):
        problems.append(
            f"{key}: the ordered stream changes it ({history.states[key]}); the table never"
        )
    return problems


def grade_differences(got: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """What differs between Trino's grades and the replay's, criterion by criterion."""
    out = [f"{e}: missing in Trino" for e in sorted(set(expected) - set(got))]
    out += [f"{e}: not in the replay" for e in sorted(set(got) - set(expected))]
    for exam_id in sorted(set(got) & set(expected)):
        g, w = got[exam_id], expected[exam_id]
        for cid in sorted(set(g["criteria"]) | set(w["criteria"])):
            if g["criteria"].get(cid) != w["criteria"].get(cid):
                out.append(f"{exam_id} {cid}: {g['criteria'].get(cid)} != {w['criteria'].get(cid)}")
        for k in ("parts", "total_pct", "passed"):
            if g[k] != w[k]:
                out.append(f"{exam_id} {k}: {g[k]} != {w[k]}")
    return out


def table_rows(conn: Any, namespace: str) -> list[Row]:
    """Every row of the transitions table, each transition once (by its id)."""
    cur = conn.cursor()
    cur.execute(
        f"SELECT DISTINCT transition_id, exam_id, criterion_id, previous_state, state, seq "
        f"FROM {TRINO_CATALOG}.{namespace}.criterion_transitions"
    )
    return [Row(e, c, p, s, int(q)) for _tid, e, c, p, s, q in cur.fetchall()]


def run_backlog(live: LiveExam, trino: Any, tmp: Path, **worker: str) -> tuple[Any, ...]:
    """Publish the recordings at once, then start the worker and let it settle: the
    expected final grades, Trino's, the table's rows and the ordered history."""
    path, events = recording(tmp)
    expected = comparable(replay_json(path))
    history = ordered_history(events)
    # the replay's final grades are the ordered stream's (the reference is sound)
    for exam_id, exam in expected.items():
        for cid, (state, _score, _max) in exam["criteria"].items():
            if (exam_id, cid) in history.states:
                assert history.final((exam_id, cid)) == state, (exam_id, cid)
    live.publish(sorted(events, key=lambda e: (e.ts_ms, e.event_id)))
    live.start_worker(**worker)
    live.wait_ready()
    got = settle(lambda: trino_scores(trino, live.namespace), expected, live.procs, 300)
    return expected, got, table_rows(trino, live.namespace), history


@pytest.mark.integration
@pytest.mark.slow
def test_a_whole_recording_published_at_once_never_shows_a_row_the_replay_does_not(
    live: LiveExam, trino: Any, trust_env: TrustEnv, tmp_path: Path
) -> None:
    expected, got, rows, history = run_backlog(live, trino, tmp_path)
    assert got == expected, "\n".join(grade_differences(got, expected))
    assert len(rows) >= sum(len(e["criteria"]) for e in expected.values())
    problems = wrong_rows(rows, history)
    assert problems == [], "\n".join(problems[:80])


@pytest.mark.integration
@pytest.mark.slow
def test_the_check_sees_the_rows_of_a_worker_whose_clock_runs_ahead(
    live: LiveExam, trino: Any, trust_env: TrustEnv, tmp_path: Path
) -> None:
    """The control: the same backlog graded by the worker with its partitions' watermark
    not aligned (a topic read ahead moves it) leaves rows the ordered stream never makes,
    and the check reports them (so the test above would see them)."""
    live.worker_command = lambda: [sys.executable, str(UNALIGNED)]  # type: ignore[method-assign]
    expected, got, rows, history = run_backlog(live, trino, tmp_path)
    problems = wrong_rows(rows, history) + grade_differences(got, expected)
    print("\n".join(problems))
    assert problems, "the unaligned worker left no wrong row: the check proves nothing here"


# ------------------------------------------------------------------ the check itself
def _history() -> History:
    return History(
        {
            ("e", "p1.a"): [None, "pending", "expired", "met"],
            ("e", "p1.b"): [None, "pending", "met"],
        },
        {
            ("e", "p1.a"): {(None, "pending"), ("pending", "expired"), ("expired", "met")},
            ("e", "p1.b"): {(None, "pending"), ("pending", "met")},
        },
    )


def _good() -> list[Row]:
    return [
        Row("e", "p1.a", None, "pending", 1),
        Row("e", "p1.b", None, "pending", 2),
        Row("e", "p1.a", "pending", "expired", 3),
        Row("e", "p1.b", "pending", "met", 4),
        Row("e", "p1.a", "expired", "met", 5),
    ]


@pytest.mark.unit
def test_the_check_passes_the_ordered_streams_rows_and_no_shortcut() -> None:
    assert wrong_rows(_good(), _history()) == []
    # skipping a state the ordered stream passes through is a change it never makes
    coarser = [r for r in _good() if r.seq not in (3, 5)] + [Row("e", "p1.a", "pending", "met", 5)]
    assert any("pending -> met" in p for p in wrong_rows(coarser, _history()))


@pytest.mark.unit
@pytest.mark.parametrize(
    ("extra", "says"),
    [
        # a transient 'unknown' the ordered stream never shows, then back
        (
            [Row("e", "p1.b", "pending", "unknown", 3), Row("e", "p1.b", "unknown", "met", 4)],
            "pending -> unknown",
        ),
        # a box closed early as expired on a criterion the stream meets in time
        (
            [Row("e", "p1.b", "pending", "expired", 3), Row("e", "p1.b", "expired", "met", 4)],
            "pending -> expired",
        ),
        # a row of a criterion the stream never changes
        ([Row("e", "p1.c", None, "unknown", 6)], "never changes it"),
    ],
)
def test_the_check_reports_a_fabricated_wrong_row(extra: list[Row], says: str) -> None:
    rows = [r for r in _good() if r.criterion_id != "p1.b" or r.seq < 3] + extra
    if extra[0].criterion_id == "p1.c":
        rows = _good() + extra
    problems = wrong_rows(rows, _history())
    assert any(says in p for p in problems), problems


@pytest.mark.unit
def test_the_check_reports_rows_out_of_order_and_a_wrong_end() -> None:
    swapped = [
        *_good()[:2],
        Row("e", "p1.a", "expired", "met", 3),
        Row("e", "p1.b", "pending", "met", 4),
    ]
    problems = wrong_rows(swapped, _history())
    assert any("does not start where" in p for p in problems), problems
    short = [r for r in _good() if r.seq != 5]
    assert any("ends expired" in p for p in wrong_rows(short, _history()))


@pytest.mark.unit
def test_the_ordered_history_of_the_recordings_ends_in_the_replays_grades(tmp_path: Path) -> None:
    from services.judge.default import default_judge
    from services.offline.replay import replay_events
    from services.rubrics import resolver

    _path, events = recording(tmp_path)
    history = ordered_history(events)
    replay = replay_events(events, resolver(), default_judge())
    for result in replay.results:
        for c in result.criteria:
            key = (result.exam_id, c.criterion_id)
            if key in history.states:
                assert history.final(key) == c.state, key
    assert len(history.states) > 100
