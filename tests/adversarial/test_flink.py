"""Attacks on p1.exactly_once's reading of the Flink job's checkpointing mode.

A job that ran at-least-once or without checkpointing fails the criterion at the close
(tests/integration/collectors/test_flink_real.py shows it on a real job). None of these may
change that grade or anyone else's:

* the sink's commits carrying ``flink.max-committed-checkpoint-id`` (an at-least-once
  job's Iceberg commits carry it too) do not make the job exactly once;
* an exactly-once report after the time box closed does not turn failed into met;
* another platform's at-least-once job of the same name fails nobody but its own exam.
"""

from __future__ import annotations

import pytest

from services.core.events import Event
from services.core.simple_judge import KeywordJudge
from services.offline.replay import replay_events
from services.offline.scenarios import ASSETS, MINUTE, ExamBuilder
from services.rubrics import resolver

pytestmark = [pytest.mark.adversarial, pytest.mark.unit]

JOB = ASSETS["flink_job"]


def with_mode(events: list[Event], mode: str | None) -> list[Event]:
    return [
        Event(e.type, e.platform_id, e.event_id, e.ts_ms, {**e.data, "checkpointing_mode": mode})
        if e.type == "flink.job"
        else e
        for e in events
    ]


def exactly_once(events: list[Event]) -> dict[str, tuple[str, str]]:
    """platform -> (state, reason) of p1.exactly_once for every exam in ``events``."""
    results = replay_events(events, resolver(), KeywordJudge()).results
    out = {}
    for exam in results:
        c = exam.criterion("p1.exactly_once")
        out[exam.platform_id] = (c.state, c.reason)
    return out


def test_checkpoint_ids_in_the_sink_commits_do_not_make_at_least_once_exactly_once() -> None:
    b = ExamBuilder("basecamp-mallory").full()
    events = with_mode(b.events, "at_least_once")
    commits = [
        e
        for e in events
        if e.type == "iceberg.commit" and "flink.max-committed-checkpoint-id" in e.data["summary"]
    ]
    assert commits  # the sink's commits carry checkpoint ids, as a real at-least-once job's do
    state, reason = exactly_once(events)["basecamp-mallory"]
    assert state == "failed", reason
    assert f"job {JOB} checkpoints at least once, never exactly once" in reason


def test_an_exactly_once_report_after_the_close_does_not_undo_the_fail() -> None:
    b = ExamBuilder("basecamp-mallory").full()
    events = with_mode(b.events, None)
    [job] = [e for e in events if e.type == "flink.job"]
    # Part 1 closed at minute 181; the job reports exactly once at minute 200
    late = Event(
        job.type,
        job.platform_id,
        job.event_id + "-late",
        b.at(200),
        {**job.data, "job_id": "late-run", "checkpointing_mode": "exactly_once"},
    )
    assert late.ts_ms > b.at(181) and late.ts_ms - b.start_ms == 200 * MINUTE
    state, reason = exactly_once([*events, late])["basecamp-mallory"]
    assert state == "failed", reason
    assert "has checkpointing off, never exactly once" in reason


def test_another_platforms_at_least_once_job_of_the_same_name_fails_only_its_own_exam() -> None:
    alice = ExamBuilder("basecamp-alice").full()
    mallory = ExamBuilder("basecamp-mallory").full()
    graded = exactly_once([*alice.events, *with_mode(mallory.events, "at_least_once")])
    assert graded["basecamp-alice"][0] == "met", graded["basecamp-alice"][1]
    assert graded["basecamp-mallory"][0] == "failed"
