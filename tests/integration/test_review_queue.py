"""The review queue on the real stack: Kafka, registry, Iceberg catalog, Trino.

``proctor worker`` grades two exams with the offline judge at a review threshold of 0.99,
so every text criterion whose decision hangs on a point the judge is less than sure of
waits for review. The queue in Trino (``review_queue``) must hold exactly what the
offline replay of the same events queues, pending, with the judge's confidence, the
threshold and the text's digest; the exams show ``review``. Then the proctor decides, by
the commands: ``proctor review confirm`` (alice) keeps the grade and marks the row
confirmed by who and why; ``proctor review override`` (bob) changes the grade and marks it
overridden. An unsigned confirm written straight to the topic, a confirm of a criterion
that is not a text criterion and one for a candidate not in the roster change nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from confluent_kafka import Producer
from pyiceberg.catalog import Catalog

from services.cli import cli
from services.contract.schemas import topic_name
from services.core.events import Event, ms_to_rfc3339
from services.judge.configured import configured_judge
from services.offline.replay import replay_events
from services.offline.scenarios import ExamBuilder
from services.rubrics import resolver
from services.settings import JudgeSettings
from tests.integration.grader.live import TRINO_CATALOG, LiveExam, live_exam

pytestmark = [pytest.mark.integration, pytest.mark.slow]

THRESHOLD = "0.99"
WHO = ("alice", "bob")


@pytest.fixture
def live(
    stack: Any,
    kafka_bootstrap: str,
    registry_url: str,
    iceberg_catalog: Catalog,
    trino_connection: Any,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[LiveExam]:
    with live_exam(
        "rq",
        request.node.name,
        kafka_bootstrap,
        registry_url,
        iceberg_catalog,
        trino_connection,
        tmp_path,
        20,
    ) as exam_:
        yield exam_


def exam_events(who: str) -> list[Event]:
    return ExamBuilder(f"basecamp-{who}", exam_id=f"rq-{who}").full().events


def at(minutes: float) -> str:
    return ms_to_rfc3339(ExamBuilder("basecamp-x").at(minutes))


def queue(trino: Any, namespace: str) -> dict[tuple[str, str], dict[str, Any]]:
    cur = trino.cursor()
    try:
        cur.execute(f"SELECT * FROM {TRINO_CATALOG}.{namespace}.review_queue")
        rows = cur.fetchall()
    except Exception as exc:
        if "does not exist" in str(exc):
            return {}
        raise
    names = [d[0] for d in cur.description]
    out = {}
    for r in rows:
        row = dict(zip(names, r, strict=True))
        out[(row["exam_id"], row["criterion_id"])] = row
    return out


def scores(trino: Any, namespace: str) -> dict[tuple[str, str], tuple[str, str]]:
    cur = trino.cursor()
    cur.execute(
        f"SELECT exam_id, criterion_id, state, status FROM {TRINO_CATALOG}.{namespace}.exam_scores"
    )
    return {(e, c): (s, st) for e, c, s, st in cur.fetchall()}


def until(read: Any, ok: Any, what: str, live: LiveExam, timeout_s: float = 180) -> Any:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            last = read()
            if ok(last):
                return last
        dead = [p for p in live.procs if p.poll() is not None]
        assert not dead, f"worker exited: {live.log_tails()}"
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}; last: {last}\n{live.log_tails()}")


def test_low_confidence_text_verdicts_wait_for_a_proctor(
    live: LiveExam, trino_connection: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = ["--bootstrap", live.bootstrap, "--registry-url", live.registry_url,
            "--prefix", live.prefix]  # fmt: skip
    monkeypatch.setenv("PROCTOR_TRINO_URL", live.config.trino_url)
    runner = CliRunner()

    def run(*args: str, ok: bool = True, remote: bool = True) -> Any:
        result = runner.invoke(cli, [*args, *(conn if remote else [])])
        if ok:
            assert result.exit_code == 0, result.output
        return result

    for who in WHO:
        run("cohort", "add", "rq", who, "--exam", f"rq-{who}")
    events = [e for who in WHO for e in exam_events(who)]
    live.publish(events)

    # what the same events queue offline, with the same judge and threshold
    judge = configured_judge(JudgeSettings(review_threshold=float(THRESHOLD)))
    offline = replay_events(events, resolver(), judge).results
    expected = {
        (r.exam_id, c.criterion_id): c for r in offline for c in r.criteria if c.review is not None
    }
    assert {cid for _, cid in expected} >= {"p3.senior_tone"}, expected
    contents = {e.event_id: str(e.get("content")) for e in events if e.get("content")}

    live.start_worker(PROCTOR_REVIEW_THRESHOLD=THRESHOLD)
    live.wait_ready()
    got = until(
        lambda: queue(trino_connection, live.namespace),
        lambda q: set(q) == set(expected),
        "the review queue",
        live,
    )
    for key, c in expected.items():
        row = got[key]
        assert c.review is not None
        assert row["status"] == "pending" and row["decided_by"] is None
        assert row["verdict"] == c.state
        assert row["confidence"] == pytest.approx(c.review.confidence)
        assert row["threshold"] == pytest.approx(0.99) and row["judge"] == "offline"
        digest = hashlib.sha256(contents[c.review.artifact_event_id].encode()).hexdigest()
        assert row["text_digest"] == digest
        assert row["queued_at"] is not None and row["decided_at"] is None
    before = scores(trino_connection, live.namespace)
    assert {before[(f"rq-{w}", "p3.senior_tone")][1] for w in WHO} == {"review"}

    listed = run("review", "list", "--namespace", live.namespace, "--json", remote=False)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted((r["exam_id"], r["criterion_id"]) for r in rows) == sorted(expected)

    # failure paths: nothing is sent, nothing changes
    bad = run("review", "confirm", "--candidate", "alice", "--criterion", "p1.cdc_source",
              "--reason", "x", "--by", "jane", "--at", at(430), ok=False)  # fmt: skip
    assert bad.exit_code != 0 and "not a text criterion" in bad.output
    nobody = run("review", "confirm", "--candidate", "zed", "--criterion", "p3.senior_tone",
                 "--reason", "x", "--by", "jane", "--at", at(430), ok=False)  # fmt: skip
    assert nobody.exit_code != 0 and "'zed' is neither a candidate" in nobody.output
    forged = Event(
        "grade.overridden",
        "basecamp-bob",
        "forged-confirm",
        ExamBuilder("basecamp-bob").at(430),
        {
            "exam_id": "rq-bob",
            "criterion_id": "p2.postmortem",
            "state": "graded",
            "reason": "mine",
            "by": "jane",
            "kind": "confirm",
        },
    )
    producer = Producer({"bootstrap.servers": live.bootstrap})
    producer.produce(
        topic_name("exam.control", live.prefix),
        key=b"basecamp-bob",
        value=live.codec.encode(forged),
    )
    assert producer.flush(30) == 0

    # the proctor decides: alice's tone confirmed, bob's overridden
    run("review", "confirm", "--candidate", "alice", "--criterion", "p3.senior_tone",
        "--reason", "read it: senior and kind", "--by", "jane", "--at", at(430))  # fmt: skip
    run("review", "override", "--candidate", "bob", "--criterion", "p3.senior_tone",
        "--state", "failed", "--reason", "dismissive in the second paragraph", "--by", "jane",
        "--at", at(431))  # fmt: skip
    alice, bob = ("rq-alice", "p3.senior_tone"), ("rq-bob", "p3.senior_tone")
    decided = until(
        lambda: queue(trino_connection, live.namespace),
        lambda q: q[alice]["status"] == "confirmed" and q[bob]["status"] == "overridden",
        "the decisions",
        live,
    )
    assert decided[alice]["decided_by"] == "jane"
    assert decided[alice]["reason"] == "read it: senior and kind"
    assert decided[alice]["decided_at"] is not None
    assert decided[bob]["decided_by"] == "jane"
    assert decided[bob]["reason"] == "dismissive in the second paragraph"
    # the rest of the queue is untouched: the unsigned confirm of bob's postmortem, on the
    # same partition before the decisions, was refused and dead-lettered
    for key in set(expected) - {alice, bob}:
        assert decided[key]["status"] == "pending", key
    assert ("rq-bob", "p2.postmortem") in expected
    letters = [d for d in live.dead_letters(1) if d.raw_value == live.codec.encode(forged)]
    assert [d.error_class for d in letters] == ["unauthenticated"], live.dead_letters(0, 1)
    after = until(
        lambda: scores(trino_connection, live.namespace),
        lambda s: s[bob][0] == "failed",
        "bob's override in exam_scores",
        live,
    )
    assert after[alice][0] == before[alice][0]  # confirmed: the grader's state stands
    pending = list(run("review", "list", "--namespace", live.namespace, "--status", "pending",
                       "--json", remote=False).stdout.splitlines())  # fmt: skip
    assert sorted(
        tuple(json.loads(p)[k] for k in ("exam_id", "criterion_id")) for p in pending
    ) == sorted(set(expected) - {alice, bob})
