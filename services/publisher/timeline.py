"""What a simulated candidate platform emits during a whole exam: a pure, seeded timeline.

The exam itself (control events and the signals that decide criteria) comes from the
grading core's scenario builder (:class:`services.offline.scenarios.ExamBuilder`), so the
simulator and the committed scenario recordings tell the same story. On top of it this
module adds what real collectors send all day and that decides nothing by itself: every
collector's heartbeat each poll (30 s by default), the CDC topic's offsets each poll
(interpolated between the builder's readings, so the growth is the builder's), a Flink
checkpoint every minute, and a candidate's everyday Trino queries. A silenced collector
sends nothing at all, which is what makes criteria ``unknown``.

Event ids are UUIDs derived from a run key (seed, start, exam), so a run is reproducible
and two runs never share an event id (the engine de-duplicates on event_id).
"""

from __future__ import annotations

import itertools
import random
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from services.core.events import Event, ms_to_rfc3339
from services.errors import ConfigError
from services.exam_builder import (
    ASSETS,
    COLLECTORS,
    FAULT_KINDS,
    MINUTE,
    MODEL_REL,
    PASS_STATES,
    ExamBuilder,
)

#: minute of exam.ended in the builder's standard exam; the run lasts this long
EXAM_MINUTES = 425.0
DEFAULT_POLL_SECONDS = 30.0
CHECKPOINT_SECONDS = 60.0
#: the builder's Flink job id and its last checkpoint id; ours continue from there
_JOB_ID = "job-1"
_FIRST_EXTRA_CHECKPOINT = 5
_UUID_NS = uuid.UUID("6f0b7a52-3c4e-4c1b-9a57-2d0a51f0e1a1")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")

DIAGNOSES = ("right", "partial", "wrong", "symptom", "none")
POSTMORTEMS = ("good", "blaming", "no_test", "none")
REVIEWS = ("strong", "weak", "none")


@dataclass(frozen=True, slots=True)
class Choices:
    """Everything a scenario can choose; presets fill it, ``key=value`` options refine it."""

    layer: str = "trino"
    kind: str = "stale_statistics"
    diagnosis: str = "right"
    diagnosis_minutes: float = 50.0
    manual_apply_part1: bool = False
    manual_apply_part2: bool = False
    reach_100k: bool = True
    postmortem: str = "good"
    review: str = "strong"
    self_grade: float | None = 95.0
    silent: tuple[str, ...] = ()

    def builder_kwargs(self) -> dict[str, Any]:
        part1: dict[str, Any] = {}
        if self.manual_apply_part1:
            part1["manual_apply_at"] = 70
        if not self.reach_100k:
            part1 |= {"offsets_peak": 30_000, "commit_added": 20_000}
        if "schemas" in self.silent:
            # a blind registry collector never reports the subject either
            part1["skip"] = ["schema"]
        return {
            "layer": self.layer,
            "kind": self.kind,
            "part1": part1,
            "part2": {
                "diagnosis": self.diagnosis,
                "diagnosis_at": self.diagnosis_minutes,
                "manual_apply": self.manual_apply_part2,
                "postmortem": self.postmortem,
            },
            "review": self.review,
            "self_grade": self.self_grade,
            "silent": self.silent,
        }


@dataclass(frozen=True, slots=True)
class Preset:
    """A named scenario: its choices and the states grading must give (checked in tests)."""

    name: str
    about: str
    choices: Choices
    expect: Mapping[str, str]
    passed: bool


PRESETS: Mapping[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "clean_pass", "Every criterion met: the exam is passed.", Choices(), PASS_STATES, True
        ),
        Preset(
            "manual_apply",
            "Builds the pipeline but patches a deployment with kubectl in Part 1.",
            Choices(manual_apply_part1=True, self_grade=80),
            {"p1.zero_manual_apply": "failed", "overall.part1": "failed", "overall.pass": "failed"},
            False,
        ),
        Preset(
            "no_100k",
            "The pipeline works, but the 100k sample never gets through end to end.",
            Choices(reach_100k=False, self_grade=80),
            {"p1.e2e_100k": "expired", "p1.cdc_source": "met", "overall.part1": "expired"},
            False,
        ),
        Preset(
            "partial_diagnosis",
            "Names the fault's layer but not its kind.",
            Choices(diagnosis="partial", self_grade=80),
            {
                "p2.root_cause": "partial",
                "p2.root_cause_90min": "expired",
                "overall.part2": "partial",
            },
            False,
        ),
        Preset(
            "wrong_diagnosis",
            "Blames the wrong layer and never corrects it.",
            Choices(diagnosis="wrong", self_grade=80),
            {
                "p2.root_cause": "failed",
                "p2.root_cause_90min": "expired",
                "overall.part2": "failed",
            },
            False,
        ),
        Preset(
            "symptom_diagnosis",
            "Blames the dashboard (the symptom) as the cause.",
            Choices(diagnosis="symptom", self_grade=80),
            {"p2.root_cause": "failed", "overall.part2": "failed"},
            False,
        ),
        Preset(
            "late_diagnosis",
            "The right root cause, 100 minutes after the fault: a signal, not a fail.",
            Choices(diagnosis_minutes=100),
            {"p2.root_cause": "met", "p2.root_cause_90min": "partial", "overall.pass": "met"},
            True,
        ),
        Preset(
            "manual_fix",
            "Fixes the incident with kubectl instead of a GitOps merge.",
            Choices(manual_apply_part2=True, self_grade=80),
            {
                "p1.zero_manual_apply": "met",
                "p2.fix_via_gitops": "failed",
                "overall.part2": "failed",
            },
            False,
        ),
        Preset(
            "weak_postmortem",
            "A postmortem that blames a colleague and adds no test.",
            Choices(postmortem="blaming", self_grade=85),
            {"p2.root_cause": "met", "overall.part2": "failed"},
            False,
        ),
        Preset(
            "weak_review",
            "A design review that forbids instead of proposing.",
            Choices(review="weak", self_grade=85),
            {"p3.senior_tone": "failed", "overall.part3": "failed"},
            False,
        ),
        Preset(
            "blind_collector",
            "The schema-registry collector is down all day: unknown, not failed.",
            Choices(silent=("schemas",), self_grade=80),
            {"p1.schema_registered": "unknown", "overall.part1": "unknown"},
            False,
        ),
    )
}

#: the demo's four candidates, one story each
DEMO_CANDIDATES: tuple[tuple[str, str], ...] = (
    ("alice", "clean_pass"),
    ("bob", "manual_apply"),
    ("carol", "wrong_diagnosis:fault=cdc/dropped_events"),
    ("dave", "late_diagnosis:fault=iceberg/stale_snapshot"),
)


def _bool(key: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"scenario option {key}={value!r}: say true or false")


def _one_of(key: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ConfigError(f"scenario option {key}={value!r}: choose one of {', '.join(allowed)}")
    return value


def _number(key: str, value: str, lo: float, hi: float) -> float:
    try:
        n = float(value)
    except ValueError as exc:
        raise ConfigError(f"scenario option {key}={value!r} is not a number") from exc
    if not lo <= n <= hi:
        raise ConfigError(f"scenario option {key}={value!r} must be between {lo:g} and {hi:g}")
    return n


def _apply(choices: Choices, key: str, value: str) -> Choices:
    if key == "fault":
        layer, _, kind = value.partition("/")
        if layer not in FAULT_KINDS:
            raise ConfigError(
                f"scenario option fault={value!r}: unknown layer {layer!r}; layers: "
                f"{', '.join(FAULT_KINDS)}"
            )
        kind = kind or FAULT_KINDS[layer][0]
        if kind not in FAULT_KINDS[layer]:
            raise ConfigError(
                f"scenario option fault={value!r}: {kind!r} is not a fault of {layer}; its "
                f"kinds: {', '.join(FAULT_KINDS[layer])}"
            )
        return replace(choices, layer=layer, kind=kind)
    if key == "diagnosis":
        return replace(choices, diagnosis=_one_of(key, value, DIAGNOSES))
    if key == "diagnosis_at":
        return replace(choices, diagnosis_minutes=_number(key, value, 1, 119))
    if key == "manual_apply":
        part = _one_of(key, value, ("part1", "part2", "none"))
        return replace(
            choices, manual_apply_part1=part == "part1", manual_apply_part2=part == "part2"
        )
    if key == "reach_100k":
        return replace(choices, reach_100k=_bool(key, value))
    if key == "postmortem":
        return replace(choices, postmortem=_one_of(key, value, POSTMORTEMS))
    if key == "review":
        return replace(choices, review=_one_of(key, value, REVIEWS))
    if key == "self_grade":
        if value == "none":
            return replace(choices, self_grade=None)
        return replace(choices, self_grade=_number(key, value, 0, 100))
    if key == "silent":
        names = tuple(n for n in value.split("+") if n)
        unknown = [n for n in names if n not in COLLECTORS]
        if unknown:
            raise ConfigError(
                f"scenario option silent={value!r}: unknown collector(s) {', '.join(unknown)}; "
                f"collectors: {', '.join(COLLECTORS)}"
            )
        return replace(choices, silent=names)
    raise ConfigError(
        f"unknown scenario option {key!r}; options: fault, diagnosis, diagnosis_at, "
        "manual_apply, reach_100k, postmortem, review, self_grade, silent"
    )


def parse_scenario(spec: str) -> tuple[str, Choices]:
    """``PRESET[:key=value,...]`` -> (preset name, choices), e.g.
    ``wrong_diagnosis:fault=cdc/dropped_events`` or ``clean_pass:self_grade=70``."""
    name, _, rest = spec.strip().partition(":")
    preset = PRESETS.get(name)
    if preset is None:
        raise ConfigError(
            f"unknown scenario {name!r}; choose from {', '.join(PRESETS)} "
            "(`proctor simulate --list-scenarios` describes them)"
        )
    choices = preset.choices
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"scenario option {item!r} in {spec!r}: write key=value")
        choices = _apply(choices, key.strip(), value.strip())
    return name, choices


@dataclass(frozen=True, slots=True)
class Candidate:
    """One simulated candidate: who, on which platform, which story, and when they start."""

    name: str
    scenario: str
    choices: Choices
    start_ms: int
    exam_id: str
    platform_id: str = ""

    @property
    def platform(self) -> str:
        return self.platform_id or f"basecamp-{self.name}"


def plan_candidates(
    specs: Iterable[tuple[str, str]], start_ms: int, stagger_minutes: float = 0.0
) -> list[Candidate]:
    """Candidates from (name, scenario spec) pairs; the i-th starts ``i * stagger`` later.

    Exam ids carry the start time, so runs on one stack never reuse an exam id.
    """
    out: list[Candidate] = []
    seen: set[str] = set()
    for i, (name, spec) in enumerate(specs):
        if not _NAME.match(name):
            raise ConfigError(
                f"candidate name {name!r}: use lower-case letters, digits and dashes "
                "(it becomes the platform id basecamp-<name>)"
            )
        if name in seen:
            raise ConfigError(f"candidate {name!r} is named twice; one platform runs one exam")
        seen.add(name)
        scenario, choices = parse_scenario(spec)
        start = start_ms + round(i * stagger_minutes * MINUTE)
        stamp = ms_to_rfc3339(start)[:16].replace("-", "").replace(":", "").replace("T", "-")
        out.append(Candidate(name, scenario, choices, start, f"exam-{stamp}-{name}"))
    return out


@dataclass(frozen=True, slots=True)
class Background:
    """How often collectors report; the realism added around the builder's exam."""

    poll_seconds: float = DEFAULT_POLL_SECONDS
    checkpoint_seconds: float = CHECKPOINT_SECONDS
    queries_every_minutes: float = 10.0

    def __post_init__(self) -> None:
        if not 1 <= self.poll_seconds <= 60:
            raise ConfigError(
                f"poll interval {self.poll_seconds:g}s: use 1 to 60 seconds (collectors that "
                "report less often than the rubric's 90 s heartbeat grace look blind)"
            )


@dataclass
class _Ids:
    run_key: str
    n: int = 0
    mapping: dict[str, str] = field(default_factory=dict)

    def rename(self, old: str) -> str:
        new = self.mapping.get(old)
        if new is None:
            new = str(uuid.uuid5(_UUID_NS, f"{self.run_key}/{old}"))
            self.mapping[old] = new
        return new

    def fresh(self) -> str:
        self.n += 1
        return str(uuid.uuid5(_UUID_NS, f"{self.run_key}/bg/{self.n}"))


def _offsets_at(points: Sequence[tuple[int, int]], ts: int) -> int:
    """The high watermark at ``ts`` on the line through the builder's readings."""
    if ts <= points[0][0]:
        return points[0][1]
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if t0 <= ts <= t1:
            return v0 + (v1 - v0) * (ts - t0) // max(1, t1 - t0)
    return points[-1][1]


def _grid(start: int, end: int, step_ms: int) -> Iterable[int]:
    t = start
    while t <= end:
        yield t
        t += step_ms


def background_signals(
    core: Sequence[Event], candidate: Candidate, bg: Background, rng: random.Random, ids: _Ids
) -> list[Event]:
    """Heartbeats, offsets polls, checkpoints and everyday queries around the core exam."""
    pid = candidate.platform
    start = candidate.start_ms
    end = start + round(EXAM_MINUTES * MINUTE)
    poll = round(bg.poll_seconds * 1000)
    out: list[Event] = []

    def add(type_: str, ts: int, **data: Any) -> None:
        out.append(Event(type_, pid, ids.fresh(), ts, data))

    silent = set(candidate.choices.silent)
    for n, ts in enumerate(_grid(start - poll, end + poll, poll)):
        for c in COLLECTORS:
            if c in silent:
                continue
            # collectors drift a little around their poll instant, as real ones do
            jitter = rng.randint(0, min(2000, poll // 4))
            add(
                "collector.heartbeat",
                ts + jitter,
                collector=c,
                source=f"{c}.basecamp",
                position=f"poll {n}",
                healthy=True,
                error=None,
            )
    if "cdc-offsets" not in silent:
        readings: dict[int, list[tuple[int, int]]] = {}
        for ev in core:
            if ev.type == "cdc.offsets":
                readings.setdefault(int(ev.data["partition"]), []).append(
                    (ev.ts_ms, int(ev.data["high_watermark"]))
                )
        for partition, points in sorted(readings.items()):
            points.sort()
            taken = {t for t, _ in points}
            for ts in _grid(points[0][0] + poll, end, poll):
                if ts in taken:
                    continue
                add(
                    "cdc.offsets",
                    ts,
                    cluster="redpanda.basecamp:9092",
                    topic=ASSETS["cdc_topic"],
                    partition=partition,
                    high_watermark=_offsets_at(points, ts),
                    log_start_offset=0,
                )
    if "flink" not in silent:
        first = start + 25 * MINUTE
        step = round(bg.checkpoint_seconds * 1000)
        for i, ts in enumerate(_grid(first, end, step)):
            trigger = ts - rng.randint(200, 900)
            add(
                "flink.checkpoint",
                ts,
                job_id=_JOB_ID,
                checkpoint_id=_FIRST_EXTRA_CHECKPOINT + i,
                status="COMPLETED",
                is_savepoint=False,
                trigger_ts=ms_to_rfc3339(trigger),
                duration_ms=ts - trigger,
                state_size=1_048_576 + 4096 * i,
            )
    if "trino" not in silent:
        every = round(bg.queries_every_minutes * MINUTE)
        for i, ts in enumerate(_grid(start + 30 * MINUTE, end, every)):
            add(
                "trino.query",
                ts + rng.randint(0, 30_000),
                query_id=f"{ms_to_rfc3339(ts)[:10].replace('-', '')}_{i:05d}_{candidate.name}",
                user=candidate.name,
                state="FINISHED",
                query=f"SELECT order_hour, orders FROM {MODEL_REL} ORDER BY order_hour DESC LIMIT 24",
                catalog="iceberg",
                schema="analytics",
                tables=[f"iceberg.{MODEL_REL}"],
                columns=[f"iceberg.{MODEL_REL}.order_hour", f"iceberg.{MODEL_REL}.orders"],
                error_code=None,
            )
    return out


def exam_events(
    candidate: Candidate, seed: int = 7, background: Background | None = None
) -> list[Event]:
    """The whole exam of one candidate, in event-time order (ties by event id)."""
    builder = ExamBuilder(
        candidate.platform,
        exam_id=candidate.exam_id,
        candidate_id=candidate.name,
        start_ms=candidate.start_ms,
    )
    kwargs = candidate.choices.builder_kwargs()
    builder.full(
        kwargs.pop("layer"),
        kwargs.pop("kind"),
        **kwargs,
    )
    ids = _Ids(f"{seed}/{candidate.start_ms}/{candidate.exam_id}")
    silent = set(candidate.choices.silent)
    core = [
        replace(ev, event_id=ids.rename(ev.event_id))
        for ev in builder.events
        # a silenced collector is down all day: not even the builder's first heartbeat
        if not (ev.type == "collector.heartbeat" and ev.data.get("collector") in silent)
    ]
    rng = random.Random(f"{seed}/{candidate.exam_id}")
    events = core + background_signals(core, candidate, background or Background(), rng, ids)
    events.sort(key=lambda e: (e.ts_ms, e.event_id))
    return events


def run_events(
    candidates: Sequence[Candidate], seed: int = 7, background: Background | None = None
) -> list[Event]:
    """Every candidate's exam merged in event-time order: what the platforms emit."""
    merged: list[Event] = []
    for c in candidates:
        merged += exam_events(c, seed, background)
    merged.sort(key=lambda e: (e.ts_ms, e.event_id))
    return merged


def describe_presets() -> list[tuple[str, str]]:
    return [(p.name, p.about) for p in PRESETS.values()]


def expected_states(candidate: Candidate) -> Mapping[str, str]:
    """What grading must say about this candidate's preset (options can change it)."""
    return PRESETS[candidate.scenario].expect
