"""A 3-candidate cohort run end to end on the real stack, by the proctor's commands.

alice, bob and carol sit cohort `c3` (bob with 30 extra minutes in Part 1 from the roster).
The proctor starts the cohort, bob's Part 1 is extended by 15 more minutes, the fault is
injected for the cohort, carol's Part 2 is ended early, Part 3 starts, the exams end, and
carol's root cause is overridden by a named proctor. The candidates' platforms send what
the scenario builder's exams send (bob registers his schema late, at minute 225: only his
extensions make it count; carol's right diagnosis comes after her Part 2 was ended).
``proctor worker`` grades it into Iceberg; ``proctor record`` writes the cohort to a file;
Trino's exam_scores must equal ``proctor replay`` of that recording; ``proctor regrade
--publish`` under a shadow rubric adds version 1 beside the live one (exam_scores then
shows it, exam_score_versions both); ``proctor report`` writes each candidate's page with
the override's who and why.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog

from services.cohort.cli import cohort, exam, fault, grade, record_cmd, report_cmd
from services.contract.jsonl import read_jsonl
from services.core.events import Event, ms_to_rfc3339
from services.judge.default import default_judge
from services.offline.cli import regrade
from services.offline.replay import replay_events
from services.offline.scenarios import FAULT_TARGETS, ExamBuilder
from services.rubrics import resolver
from services.stack.catalog import load_catalog, trino_connect
from tests.integration.grader.live import (
    TRINO_CATALOG,
    LiveExam,
    comparable,
    live_exam,
    settle,
    trino_scores,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SENT_BY_COMMANDS = {"exam.started", "part.started", "part.ended", "fault.injected", "exam.ended"}
WHO = ("alice", "bob", "carol")


@pytest.fixture(scope="module")
def catalog(stack: Any) -> Iterator[Catalog]:
    cat = load_catalog(stack.require("postgres"))
    yield cat
    if isinstance(cat, SqlCatalog):
        cat.engine.dispose()


@pytest.fixture(scope="module")
def trino(stack: Any) -> Iterator[Any]:
    with contextlib.closing(trino_connect(stack.require("trino"))) as conn:
        yield conn


@pytest.fixture
def live(
    stack: Any,
    kafka_bootstrap: str,
    registry_url: str,
    catalog: Catalog,
    trino: Any,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[LiveExam]:
    with live_exam(
        "coh", request.node.name, kafka_bootstrap, registry_url, catalog, trino, tmp_path, 20
    ) as exam_:
        yield exam_


def platform_events(who: str) -> list[Event]:
    """What the candidate's platform and submissions send (the proctor's commands send
    the rest), with each candidate's twist."""
    b = ExamBuilder(f"basecamp-{who}", exam_id=f"c3-{who}")
    b.full("trino", "stale_statistics")
    if who == "bob":  # the schema at 225: inside 1 + 180 + 30 + 15
        b.events = [
            dataclasses.replace(e, ts_ms=b.at(225)) if e.type == "schema.registered" else e
            for e in b.events
        ]
        b.heartbeats(226 - 1 / 3)
    if who == "carol":
        b.heartbeats(200 - 1 / 3)  # her Part 2 box closes at 200
    return [e for e in b.events if e.type not in SENT_BY_COMMANDS]


def at(minutes: float) -> str:
    return ms_to_rfc3339(ExamBuilder("basecamp-x").at(minutes))


def test_a_cohort_from_roster_to_reports(live: LiveExam, trino: Any, tmp_path: Path) -> None:
    conn = ["--bootstrap", live.bootstrap, "--registry-url", live.registry_url,
            "--prefix", live.prefix]  # fmt: skip

    def run(group: Any, *args: str, local: bool = False) -> str:
        result = CliRunner().invoke(group, [*args, *([] if local else conn)])
        assert result.exit_code == 0, result.output
        return result.output

    # roster
    for who in WHO:
        extra = ["--extra-minutes", "1=30"] if who == "bob" else []
        run(cohort, "add", "c3", who, "--exam", f"c3-{who}", *extra)
    assert "cohort c3: 3 exam(s)" in run(cohort, "list", "c3")

    # the exam, by the proctor's commands, and the platforms' own signals
    assert "[3/3] started carol" in run(exam, "start", "--cohort", "c3", "--at", at(1))
    live.publish([e for who in WHO for e in platform_events(who)])
    run(exam, "extend", "--cohort", "c3", "--candidate", "bob", "--part", "1",
        "--minutes", "15", "--reason", "VPN outage", "--at", at(100))  # fmt: skip
    run(fault, "inject", "--cohort", "c3", "--layer", "trino", "--kind", "stale_statistics",
        "--target", FAULT_TARGETS["trino"], "--at", at(180))  # fmt: skip
    run(exam, "end-part", "--cohort", "c3", "--candidate", "carol", "--part", "2",
        "--at", at(200))  # fmt: skip
    run(exam, "start-part", "--cohort", "c3", "--part", "3", "--at", at(300))
    run(exam, "end", "--cohort", "c3", "--at", at(425))
    run(grade, "override", "--candidate", "carol", "--criterion", "p2.root_cause",
        "--state", "partial", "--reason", "named the layer on the call before the box closed",
        "--by", "jane", "--at", at(430))  # fmt: skip

    # the recording, and what it grades offline
    recording = tmp_path / "c3.jsonl"
    out = run(record_cmd, str(recording), "--cohort", "c3")
    assert "verified" in out and "left out 0 refused" in out
    recorded = read_jsonl(recording)
    offline = replay_events(recorded, resolver(), default_judge()).results
    by = {r.candidate_id: r for r in offline}
    assert sorted(by) == list(WHO)
    assert by["bob"].criterion("p1.schema_registered").state == "met"
    assert by["alice"].criterion("p1.schema_registered").state == "met"
    carol = by["carol"]
    assert carol.criterion("p2.fix_via_gitops").state == "expired"  # merged after her end
    assert carol.criterion("p2.root_cause").state == "partial"
    assert carol.criterion("p2.root_cause").reason.startswith("Overridden by jane")
    assert by["alice"].criterion("p2.root_cause").state == "met"

    # live: the worker grades the topics into Iceberg; Trino equals the recording's replay
    expected = comparable(
        {
            r.exam_id: {
                "platform_id": r.platform_id,
                "criteria": {
                    c.criterion_id: {"state": c.state, "score": c.score, "max_score": c.max_score}
                    for c in r.criteria
                },
                "parts": {
                    k: {"score": v.score, "max_score": v.max_score} for k, v in r.parts.items()
                },
                "total_pct": r.total_pct,
                "passed": r.passed,
            }
            for r in offline
        }
    )
    live.start_worker()
    live.wait_ready()
    got = settle(lambda: trino_scores(trino, live.namespace), expected, live.procs)
    assert got == expected, live.log_tails()
    cur = trino.cursor()
    cur.execute(
        f"SELECT state, reason FROM {TRINO_CATALOG}.{live.namespace}.exam_scores "
        "WHERE exam_id = 'c3-carol' AND criterion_id = 'p2.root_cause'"
    )
    ((state, reason),) = cur.fetchall()
    assert state == "partial" and reason.startswith("Overridden by jane at 16:10:00Z")

    # a regrade under the shadow rubric v2 (a new criterion) published beside the live one
    shadow = Path(__file__).resolve().parents[1] / "scenarios" / "rubrics"
    out = run(regrade, str(recording), "--from", "1", "--to", "2", "--rubrics-dir", str(shadow),
              "--publish", "--label", "v2 shadow", "--namespace", live.namespace,
              local=True)  # fmt: skip
    assert "published version 1 (v2 shadow) of 3 exams" in out
    cur.execute(
        f"SELECT DISTINCT exam_id, version, label, is_current FROM {TRINO_CATALOG}."
        f"{live.namespace}.exam_score_versions ORDER BY exam_id, version"
    )
    assert cur.fetchall() == [
        [f"c3-{who}", v, label, current]
        for who in WHO
        for v, label, current in ((0, "live", False), (1, "v2 shadow", True))
    ]
    v2 = replay_events(recorded, resolver(shadow), default_judge(), rubric_version="2").results
    cur.execute(
        f"SELECT exam_id, count(*), max(total_pct), bool_or(criterion_id = 'p1.schema_evolved')"
        f" FROM {TRINO_CATALOG}.{live.namespace}.exam_scores GROUP BY exam_id ORDER BY exam_id"
    )
    assert cur.fetchall() == [
        [r.exam_id, len(r.criteria), round(r.total_pct, 2), True]
        for r in sorted(v2, key=lambda r: r.exam_id)
    ]
    cur.execute(
        f"SELECT version, state, reason FROM {TRINO_CATALOG}.{live.namespace}.exam_score_versions"
        " WHERE exam_id = 'c3-carol' AND criterion_id = 'p2.root_cause' ORDER BY version"
    )
    kept = cur.fetchall()
    assert [(v, st) for v, st, _ in kept] == [(0, "partial"), (1, "partial")]
    assert all(reason.startswith("Overridden by jane") for _, _, reason in kept)

    # reports
    reports = tmp_path / "reports"
    run(report_cmd, str(recording), "--out", str(reports), "--verify", local=True)
    carol_md = (reports / "carol-c3-carol.md").read_text()
    assert "Overridden by jane" in carol_md and "| p2.root_cause | 2 | **partial** |" in carol_md
    bob_page = (reports / "bob-c3-bob.html").read_text()
    assert "p1.schema_registered" in bob_page and 'id="status"' in bob_page
    rows = list(csv.DictReader((reports / "cohort.csv").open()))
    assert [r["candidate_id"] for r in rows] == list(WHO)
    assert {r["candidate_id"]: r["overridden"] for r in rows}["carol"] == "p2.root_cause"
    assert {r["candidate_id"]: float(r["total_pct"]) for r in rows} == {
        r.candidate_id: round(r.total_pct, 2) for r in offline
    }
