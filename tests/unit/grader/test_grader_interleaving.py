"""The worker's grading of a partition, with the real core engine, in any interleaving.

Kafka keeps order per topic-partition only: a worker (or a restarted one) may read the
topics of a partition in any interleaving. The final state of every criterion must be
the replay's, whatever the interleaving, so a restart or a rebalance cannot change a
grade. This runs the scenario library through :class:`PartitionGrader` (one engine per
platform, each evaluated at its own clock under the partition's aligned watermark) without
Kafka.
"""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from services.contract.jsonl import read_jsonl
from services.contract.schemas import load_contract
from services.core.engine_store import EngineStore
from services.core.events import Event, SourcePosition
from services.core.review import is_review_id
from services.grader.grading import PartitionGrader
from services.judge.default import default_judge
from services.rubrics import resolver
from services.stack.config import REPO_ROOT

pytestmark = pytest.mark.unit

SCENARIOS = sorted((REPO_ROOT / "tests" / "scenarios").glob("*.jsonl"))
STORE = EngineStore(resolver(), default_judge())
CONTRACT = load_contract()


def replay_states(events: list[Event]) -> dict[tuple[str, str], str]:
    engine = STORE.new("replay")
    watermark = 0
    for ev in events:
        engine.apply(ev)
        watermark = max(watermark, ev.ts_ms)
        engine.evaluate(watermark)
    states = {(r.exam_id, c.criterion_id): c.state for r in engine.results() for c in r.criteria}
    # open review notes are reported as review:<kind>:<subject> rows in state unknown
    states.update({(r.exam_id, n.note_id): "unknown" for r in engine.results() for n in r.notes})
    return states


def settled(states: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
    """States that say something: not pending, and no review note that closed again."""
    return {
        k: s
        for k, s in states.items()
        if s != "pending" and not (is_review_id(k[1]) and s == "met")
    }


def worker_states(events: list[Event], seed: int) -> dict[tuple[str, str], str]:
    """Grade through PartitionGrader, topics interleaved at random (each topic in order)."""
    queues: dict[str, list[Event]] = defaultdict(list)
    for ev in events:
        queues[str(CONTRACT.schema(ev.type).topic)].append(ev)
    rnd = random.Random(seed)
    grader = PartitionGrader(0, STORE, topics=sorted(queues))
    # the worker's tick: the log end of every topic (the records are all there)
    grader.note_log_ends({t: len(q) for t, q in queues.items()})
    offsets: dict[str, int] = defaultdict(int)
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    while any(queues.values()):
        topic = rnd.choice(sorted(t for t, q in queues.items() if q))
        ev = queues[topic].pop(0)
        for row in grader.handle(ev, SourcePosition(topic, 0, offsets[topic])).rows:
            key = (row.exam_id, row.criterion_id)
            if key not in latest or row.seq > latest[key][0]:
                latest[key] = (row.seq, row.state)
        offsets[topic] += 1
    return {k: v[1] for k, v in latest.items()}


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_any_interleaving_of_the_topics_ends_in_the_replays_states(path) -> None:
    events = read_jsonl(path)
    expected = settled(replay_states(events))
    for seed in range(4):
        changed = settled(worker_states(events, seed))
        wrong = {
            k: (changed.get(k), expected.get(k))
            for k in set(changed) | set(expected)
            if changed.get(k) != expected.get(k)
        }
        assert not wrong, f"seed {seed}: (worker, replay) {wrong}"
