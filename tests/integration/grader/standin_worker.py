"""Run the grader worker with a small stand-in engine (not a test module).

The grading core's engine is not in the tree yet; this drives the real worker (Faust,
Kafka, registry, Iceberg, Trino) with an engine that has the core's promised properties:
idempotent on event_id, final state independent of order, time boxes closed by
``evaluate(watermark)``. Settings come from PROCTOR_* variables like the real command.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from services.core.events import Event
from services.core.model import Transition
from services.grader.cli import run
from services.grader.grading import GradingEngine
from services.grader.settings import GraderSettings

TICK_MS = 5000


class StandInEngine:
    """p1.seen: met at two distinct events; p1.tick: met once the watermark is 5 s past
    the first event of the platform."""

    def __init__(
        self,
        pid: str,
        seen: list[str] | None = None,
        first: int | None = None,
        states: dict[str, str] | None = None,
    ) -> None:
        self.pid = pid
        self.seen = set(seen or ())
        self.first = first
        self.states = states or {"p1.seen": "pending", "p1.tick": "pending"}

    def _set(self, cid: str, state: str, ts: int, evidence: tuple[str, ...]) -> list[Transition]:
        prev = self.states[cid]
        if prev == state:
            return []
        self.states[cid] = state
        return [
            Transition(
                f"exam-{self.pid}",
                f"cand-{self.pid}",
                self.pid,
                "y3-final",
                "1",
                "1",
                cid,
                state,
                prev,
                1.0,
                1.0,
                f"{cid} is {state}",
                evidence,
                ts,
            )
        ]  # type: ignore[arg-type]

    def apply(self, event: Event) -> Sequence[Transition]:
        if event.event_id in self.seen:
            return []
        self.seen.add(event.event_id)
        self.first = event.ts_ms if self.first is None else min(self.first, event.ts_ms)
        return (
            self._set("p1.seen", "met", event.ts_ms, (event.event_id,))
            if len(self.seen) >= 2
            else []
        )

    def evaluate(self, at_ms: int) -> Sequence[Transition]:
        if self.first is not None and at_ms >= self.first + TICK_MS:
            return self._set("p1.tick", "met", self.first + TICK_MS, ())
        return []


class StandInStore:
    def new(self, platform_id: str) -> GradingEngine:
        return StandInEngine(platform_id)

    def dump(self, engine: GradingEngine) -> bytes:
        assert isinstance(engine, StandInEngine)
        return json.dumps([engine.pid, sorted(engine.seen), engine.first, engine.states]).encode()

    def load(self, data: bytes) -> GradingEngine:
        pid, seen, first, states = json.loads(data)
        return StandInEngine(pid, seen, first, states)


if __name__ == "__main__":
    run(GraderSettings(), engines=StandInStore())
