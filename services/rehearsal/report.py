"""The proctor's view of a rehearsal: each step, the signals the collectors saw, and each
criterion's state with reason and evidence against what the scripted candidate should get.

A criterion whose grade differs from the expectation is a failure of the rehearsal, with
the path its evidence takes (collector and rule) named, so the proctor knows what to fix
before a cohort sits the exam.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One thing done on the platform, by whom, on which system, with what it answered."""

    candidate: str
    part: int
    actor: str  # proctor | candidate | injector
    step: str
    system: str
    outcome: str
    seconds: float
    source: str = "real"  # real | corpus


@dataclass(frozen=True, slots=True)
class CriterionVerdict:
    candidate: str
    criterion_id: str
    expected: str | None
    state: str
    reason: str
    evidence: str
    evidence_path: str

    @property
    def ok(self) -> bool:
        return self.expected is None or self.expected == self.state


@dataclass
class RehearsalReport:
    run_id: str
    started_at: str
    steps: list[StepRecord] = field(default_factory=list)
    signals: dict[str, dict[str, int]] = field(default_factory=dict)
    criteria: list[CriterionVerdict] = field(default_factory=list)
    dead_letters: list[str] = field(default_factory=list)
    not_rehearsed: dict[str, str] = field(default_factory=dict)
    not_injectable: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    peak_child_rss_mb: float = 0.0

    @property
    def failures(self) -> list[CriterionVerdict]:
        return [c for c in self.criteria if not c.ok]

    @property
    def passed(self) -> bool:
        return bool(self.criteria) and not self.failures

    def graded(self, candidate: str) -> Mapping[str, CriterionVerdict]:
        return {c.criterion_id: c for c in self.criteria if c.candidate == candidate}

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": self.started_at,
            "passed": self.passed,
            "seconds": round(self.seconds, 1),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "peak_child_rss_mb": round(self.peak_child_rss_mb, 1),
            "steps": [asdict(s) for s in self.steps],
            "signals": self.signals,
            "dead_letters": self.dead_letters,
            "criteria": [{**asdict(c), "ok": c.ok} for c in self.criteria],
            "failures": [
                f"{c.candidate}: {c.criterion_id} is {c.state}, expected {c.expected} "
                f"(evidence path: {c.evidence_path})"
                for c in self.failures
            ],
            "not_rehearsed": self.not_rehearsed,
            "not_injectable": self.not_injectable,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=False)

    def render(self, console: Console) -> None:
        steps = Table(title="Steps", show_lines=False)
        for col in ("candidate", "part", "actor", "step", "system", "outcome", "s"):
            steps.add_column(col, overflow="fold")
        for s in self.steps:
            label = s.system if s.source == "real" else f"{s.system} (corpus)"
            steps.add_row(
                s.candidate, str(s.part), s.actor, s.step, label, s.outcome, f"{s.seconds:.1f}"
            )
        console.print(steps)
        signals = Table(title="Signals the collectors published")
        signals.add_column("platform")
        signals.add_column("signals")
        for platform, counts in sorted(self.signals.items()):
            signals.add_row(platform, ", ".join(f"{t} {n}" for t, n in sorted(counts.items())))
        console.print(signals)
        for letter in self.dead_letters:
            console.print(f"dead letter: {letter}", highlight=False, markup=False)
        criteria = Table(title="Criteria (expected where the rehearsal produces the evidence)")
        for col in ("candidate", "criterion", "state", "expected", "", "reason"):
            criteria.add_column(col, overflow="fold")
        for c in self.criteria:
            mark = "" if c.expected is None else ("ok" if c.ok else "MISSED")
            criteria.add_row(
                c.candidate, c.criterion_id, c.state, c.expected or "-", mark, c.reason[:160]
            )
        console.print(criteria)
        if self.not_rehearsed:
            console.print("[bold]Not rehearsed here[/bold] (no real system for their evidence):")
            for cid, why in self.not_rehearsed.items():
                console.print(f"  {cid}: needs {why}", highlight=False)
        for c in self.failures:
            console.print(
                f"[red]rehearsal failure[/red] {c.candidate}: {c.criterion_id} is {c.state}, "
                f"expected {c.expected}; evidence path: {c.evidence_path}; reason: {c.reason}",
                highlight=False,
            )
        verdict = "[green]passed[/green]" if self.passed else "[red]failed[/red]"
        console.print(
            f"rehearsal {self.run_id} {verdict} in {self.seconds:.0f}s "
            f"(peak RSS {self.peak_rss_mb:.0f} MB, largest child process "
            f"{self.peak_child_rss_mb:.0f} MB)"
        )
