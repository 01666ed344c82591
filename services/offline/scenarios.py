"""The scenario library: recorded exams and the grades they must get (no I/O).

The committed recordings under ``tests/scenarios/`` are :func:`render_jsonl` of these
scenarios; a test checks that regenerating gives identical files and that grading each
gives what it expects. They double as demo data. This module is also the one place to
import the builder from (its names are re-exported here for the simulator and tests).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.core.events import Event
from services.exam_builder import (
    ASSETS,
    BASE,
    COLLECTORS,
    FAULT_KINDS,
    FAULT_TARGETS,
    MINUTE,
    MODEL_REL,
    MODEL_UID,
    PASS_STATES,
    SOURCE_UID,
    STRONG_REVIEW,
    WEAK_REVIEW,
    ExamBuilder,
    postmortem_text,
    render_jsonl,
)
from services.offline.load import load_exam

__all__ = [
    "ASSETS",
    "BASE",
    "COLLECTORS",
    "FAULT_KINDS",
    "FAULT_TARGETS",
    "MINUTE",
    "MODEL_REL",
    "MODEL_UID",
    "PASS_STATES",
    "SCENARIOS",
    "SOURCE_UID",
    "STRONG_REVIEW",
    "WEAK_REVIEW",
    "ExamBuilder",
    "Expect",
    "Scenario",
    "build",
    "load_exam",
    "postmortem_text",
    "render_jsonl",
]


@dataclass(frozen=True)
class Expect:
    """What grading a scenario must give for one exam (only the listed criteria are checked)."""

    exam_id: str
    states: dict[str, str]
    passed: bool


@dataclass(frozen=True)
class Scenario:
    name: str
    about: str
    events: tuple[Event, ...]
    expect: tuple[Expect, ...]


def _one(name: str, about: str, b: ExamBuilder, states: dict[str, str], passed: bool) -> Scenario:
    return Scenario(name, about, tuple(b.events), (Expect(b.exam_id, states, passed),))


def clean_pass() -> Scenario:
    b = ExamBuilder("basecamp-alice").full()
    return _one("clean_pass", "Every criterion met: the exam is passed.", b, PASS_STATES, True)


def _p1_fail(
    name: str, criterion: str, state: str, about: str, **part1: Any
) -> Callable[[], Scenario]:
    def build() -> Scenario:
        b = ExamBuilder("basecamp-alice").full(part1=part1, self_grade=80)
        states = {
            criterion: state,
            "overall.part1": state if state == "failed" else "expired",
            "overall.pass": "failed" if state == "failed" else "expired",
        }
        return _one(name, about, b, states, False)

    return build


def _fault(layer: str, kind: str) -> Callable[[], Scenario]:
    def build() -> Scenario:
        events: list[Event] = []
        expect: list[Expect] = []
        outcomes = {
            "right": (
                {"p2.root_cause": "met", "p2.root_cause_90min": "met", "overall.part2": "met"},
                True,
            ),
            "partial": (
                {
                    "p2.root_cause": "partial",
                    "p2.root_cause_90min": "expired",
                    "overall.part2": "partial",
                },
                False,
            ),
            "wrong": (
                {
                    "p2.root_cause": "failed",
                    "p2.root_cause_90min": "expired",
                    "overall.part2": "failed",
                },
                False,
            ),
        }
        for who, diagnosis in (("alice", "right"), ("bob", "partial"), ("carol", "wrong")):
            b = ExamBuilder(f"basecamp-{who}", start_ms=BASE + len(expect) * 7_000)
            b.full(
                layer,
                kind,
                part2={"diagnosis": diagnosis},
                self_grade=95 if diagnosis == "right" else 80,
            )
            events += b.events
            states, passed = outcomes[diagnosis]
            expect.append(Expect(b.exam_id, {**states, "p2.pattern_cited": "met"}, passed))
        events.sort(key=lambda e: (e.ts_ms, e.event_id))
        return Scenario(
            f"p2_{layer}_{kind}",
            f"Fault {layer}/{kind}: alice names layer and kind, bob only the layer, carol the wrong layer.",
            tuple(events),
            tuple(expect),
        )

    return build


def late_diagnosis() -> Scenario:
    b = ExamBuilder("basecamp-alice").full(part2={"diagnosis_at": 100}, self_grade=95)
    states = {
        "p2.root_cause": "met",
        "p2.root_cause_90min": "partial",
        "overall.part2": "met",
        "overall.pass": "met",
    }
    return _one(
        "p2_late_diagnosis",
        "Right diagnosis 100 minutes after the fault: a signal, not a fail.",
        b,
        states,
        True,
    )


def symptom_then_right() -> Scenario:
    b = ExamBuilder("basecamp-alice")
    b.start()
    b.part1()
    b.part2("trino", "stale_statistics", diagnosis="symptom", diagnosis_at=20)
    b.control(
        "diagnosis.submitted",
        180 + 40,
        fault_id="fault-1",
        layer="trino",
        kind="stale_statistics",
        summary="Stale statistics.",
    )
    b.part3()
    b.finish(80)
    states = {"p2.root_cause": "partial", "p2.root_cause_90min": "met", "overall.part2": "partial"}
    return _one(
        "p2_symptom_then_right",
        "Blames the dashboard first, then finds the cause: partial.",
        b,
        states,
        False,
    )


def manual_apply_part2() -> Scenario:
    b = ExamBuilder("basecamp-alice").full(part2={"manual_apply": True}, self_grade=80)
    states = {
        "p1.zero_manual_apply": "met",
        "p2.fix_via_gitops": "failed",
        "overall.part2": "failed",
    }
    return _one(
        "p2_manual_apply",
        "A kubectl apply during the incident fails the GitOps fix, not Part 1.",
        b,
        states,
        False,
    )


def collector_blind() -> Scenario:
    b = ExamBuilder("basecamp-alice").full(
        part1={"skip": ["schema"]}, silent=["schemas"], self_grade=80
    )
    states = {
        "p1.schema_registered": "unknown",
        "overall.part1": "unknown",
        "overall.pass": "unknown",
    }
    return _one(
        "collector_blind",
        "The schema collector is silent when Part 1 closes and no schema was seen: unknown, not expired.",
        b,
        states,
        False,
    )


def duplicates_shuffled() -> Scenario:
    b = ExamBuilder("basecamp-alice").full()
    rng = random.Random(4)
    events = list(b.events) + rng.sample(b.events, len(b.events) // 3)
    rng.shuffle(events)
    return Scenario(
        "duplicates_shuffled",
        "The clean pass, a third of its events twice, all in random order: the same grade.",
        tuple(events),
        (Expect(b.exam_id, PASS_STATES, True),),
    )


def two_platforms() -> Scenario:
    a = ExamBuilder("basecamp-alice").full()
    b = ExamBuilder("basecamp-bob", start_ms=BASE + 90_000).full(
        part1={"manual_apply_at": 70, "offsets_peak": 30_000}, review="weak", self_grade=60
    )
    strays = ExamBuilder("basecamp-nobody")
    strays.offsets(30, 5_000)
    events = sorted([*a.events, *b.events, *strays.events], key=lambda e: (e.ts_ms, e.event_id))
    return Scenario(
        "two_platforms",
        "Alice passes while Bob, interleaved on another platform, applies by hand and writes a weak review; "
        "signals of a platform without an exam grade nothing.",
        tuple(events),
        (
            Expect(a.exam_id, PASS_STATES, True),
            Expect(
                b.exam_id,
                {
                    "p1.zero_manual_apply": "failed",
                    "p1.e2e_100k": "expired",
                    "p1.cdc_source": "met",
                    "p3.issues_found": "partial",
                    "p3.senior_tone": "failed",
                    "overall.part1": "failed",
                    "overall.part3": "failed",
                },
                False,
            ),
        ),
    )


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "clean_pass": clean_pass,
    "p1_fail_e2e_100k": _p1_fail(
        "p1_fail_e2e_100k",
        "p1.e2e_100k",
        "expired",
        "Only 60,000 events reach the sink.",
        commit_added=20_000,
    ),
    "p1_fail_lineage_path": _p1_fail(
        "p1_fail_lineage_path",
        "p1.lineage_path",
        "expired",
        "No lineage from the model to the chart.",
        skip=["lineage_chart"],
    ),
    "p1_fail_pillars_correlated": _p1_fail(
        "p1_fail_pillars_correlated",
        "p1.pillars_correlated",
        "expired",
        "Trace, log and metric are seen, but never for one trace id.",
        pillar_traces=("t-1", "t-2", "t-3"),
    ),
    "p1_fail_zero_manual_apply": _p1_fail(
        "p1_fail_zero_manual_apply",
        "p1.zero_manual_apply",
        "failed",
        "A kubectl apply by hand in Part 1.",
        manual_apply_at=70,
    ),
    "p1_fail_dbt_catches_broken_row": _p1_fail(
        "p1_fail_dbt_catches_broken_row",
        "p1.dbt_catches_broken_row",
        "expired",
        "The dbt tests still pass after the upstream row was broken.",
        broken_row_caught=False,
    ),
    **{
        f"p2_{layer}_{kind}": _fault(layer, kind)
        for layer, kinds in FAULT_KINDS.items()
        for kind in kinds
    },
    "p2_late_diagnosis": late_diagnosis,
    "p2_symptom_then_right": symptom_then_right,
    "p2_manual_apply": manual_apply_part2,
    "collector_blind": collector_blind,
    "duplicates_shuffled": duplicates_shuffled,
    "two_platforms": two_platforms,
}


def build(name: str) -> Scenario:
    return SCENARIOS[name]()
