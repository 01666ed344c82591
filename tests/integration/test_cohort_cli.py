"""A cohort on the real broker: `proctor cohort add|list`, then `proctor exam start|extend|
end-part|end` and `proctor fault inject` for one candidate or the cohort. Every record on
exam.control must pass the worker's admission (signed by the proctor, platform enrolled)
and carry what the command said; a bad command sends nothing."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from services.cohort.cli import cohort, exam, fault, record_cmd
from services.contract.admission import RecordFacts
from services.contract.jsonl import read_jsonl
from services.contract.registry import Registry
from services.contract.schemas import CONTROL_TYPES, load_contract, topic_name
from services.contract.settings import ClientSettings
from services.contract.topics import ensure_topics
from services.contract.wire import WireCodec, registry_client
from services.core.events import Event
from services.core.simple_judge import KeywordJudge
from services.offline.replay import replay_events
from services.publisher.publisher import Publisher
from services.rubrics import resolver
from services.trust.admission import TrustAdmission
from services.trust.keys import Keyring
from services.trust.recording import verify_recording
from services.trust.roster import read_roster
from tests.conftest import TrustEnv

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


@pytest.fixture
def settings(kafka_bootstrap: str, registry_url: str) -> Iterator[ClientSettings]:
    s = ClientSettings(kafka_bootstrap, registry_url, f"t{uuid.uuid4().hex[:8]}.")
    client = registry_client(registry_url)
    Registry(client, registry_url, load_contract(), s.topic_prefix).register_all()
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    ensure_topics(admin, prefix=s.topic_prefix)
    yield s
    names = [n for n in admin.list_topics(timeout=10).topics if n.startswith(s.topic_prefix)]
    if names:
        for fut in admin.delete_topics(names, operation_timeout=30).values():
            fut.result(30)


def run(settings: ClientSettings, group: Any, *args: str, ok: bool = True) -> Any:
    conn = [
        "--bootstrap",
        settings.bootstrap,
        "--registry-url",
        settings.registry_url,
        "--prefix",
        settings.topic_prefix,
    ]
    result = CliRunner().invoke(group, [*args, *conn])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def control_records(settings: ClientSettings) -> list[tuple[Event, RecordFacts]]:
    codec = WireCodec(
        registry_client(settings.registry_url), load_contract(), topic_prefix=settings.topic_prefix
    )
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap,
            "group.id": f"read-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    topic = topic_name("exam.control", settings.topic_prefix)
    consumer.subscribe([topic])
    out: list[tuple[Event, RecordFacts]] = []
    idle = 0
    try:
        while idle < 6:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                idle += 1
                continue
            idle = 0
            ev = codec.decode(msg.value(), msg.topic(), msg.partition(), msg.offset())
            facts = RecordFacts(
                msg.topic() or "",
                msg.partition() or 0,
                msg.offset() or 0,
                msg.key(),
                msg.value() or b"",
                msg.headers() or [],
                msg.timestamp()[1],
            )
            out.append((ev, facts))
    finally:
        consumer.close()
    return out


def test_a_cohort_run_by_the_proctor(settings: ClientSettings, trust_env: TrustEnv) -> None:
    for who, extra in (("alice", ["--extra-minutes", "1=30"]), ("bob", []), ("carol", [])):
        out = run(settings, cohort, "add", "y3-dec", who, *extra, "--json").stdout
        assert json.loads(out.strip().splitlines()[-1])["platform_id"] == f"basecamp-{who}"
    listed = run(settings, cohort, "list", "y3-dec", "--json").stdout.splitlines()
    rows = [json.loads(line) for line in listed]
    assert [(r["candidate_id"], r["exam_id"], r["extra_minutes"]) for r in rows] == [
        ("alice", "y3-dec-alice", {"1": 30}),
        ("bob", "y3-dec-bob", {}),
        ("carol", "y3-dec-carol", {}),
    ]

    started = run(settings, exam, "start", "--cohort", "y3-dec").stdout
    assert "[3/3] started carol" in started
    run(settings, exam, "extend", "--candidate", "bob", "--part", "1", "--minutes", "15",
        "--reason", "VPN outage")  # fmt: skip
    run(settings, fault, "inject", "--cohort", "y3-dec", "--layer", "trino", "--kind",
        "stale_statistics", "--target", "lake.orders_enriched")  # fmt: skip
    run(settings, exam, "end-part", "--cohort", "y3-dec", "--candidate", "carol", "--part", "2")
    run(settings, exam, "end", "--cohort", "y3-dec")

    # failures send nothing and say what to do
    bad = run(settings, exam, "extend", "--candidate", "bob", "--part", "1", "--minutes", "-5",
              "--reason", "x", ok=False)  # fmt: skip
    assert bad.exit_code != 0 and "1 to 1440 minutes, not -5" in bad.output
    nobody = run(settings, exam, "end", "--cohort", "y3-dec", "--candidate", "zed", ok=False)
    assert "'zed' is neither a candidate nor a platform of cohort 'y3-dec'" in nobody.output
    unknown = run(settings, exam, "end", "--cohort", "nope", ok=False)
    assert "no cohort 'nope'" in unknown.output

    keyring = Keyring.from_file(trust_env.keyring_path)
    roster = read_roster(settings, keyring)
    admission = TrustAdmission(keyring, roster, trust_env.master)
    records = control_records(settings)
    for ev, facts in records:
        assert admission.admit(ev, facts) is None, (ev.type, ev.event_id)
    seen = sorted((ev.platform_id, ev.type, ev.data.get("part")) for ev, _ in records)
    expected = sorted(
        [
            (f"basecamp-{w}", t, p)
            for w in ("alice", "bob", "carol")
            for t, p in (
                ("exam.started", None),
                ("part.started", 1),
                ("fault.injected", None),
                ("exam.ended", None),
            )
        ]
        + [
            ("basecamp-alice", "part.extended", 1),
            ("basecamp-bob", "part.extended", 1),
            ("basecamp-carol", "part.ended", 2),
        ]
    )
    assert seen == expected
    ext = {ev.platform_id: ev.data for ev, _ in records if ev.type == "part.extended"}
    assert ext["basecamp-alice"]["minutes"] == 30
    assert ext["basecamp-bob"] == {
        "exam_id": "y3-dec-bob",
        "part": 1,
        "minutes": 15,
        "reason": "VPN outage",
    }


def test_record_a_cohort_from_the_topics(
    settings: ClientSettings, trust_env: TrustEnv, tmp_path: Path
) -> None:
    """alice and bob sit cohort `rec`, carol another: the recording holds exactly alice's
    and bob's admitted events (a forged exam.ended left out), verifies, and replays to the
    grades of the original recording."""
    source = read_jsonl(SCENARIOS / "p2_trino_stale_statistics.jsonl")
    for who, name in (("alice", "rec"), ("bob", "rec"), ("carol", "other")):
        run(settings, cohort, "add", name, who, "--exam", f"exam-2026-11-27-{who}")
    with Publisher(settings) as pub:
        pub.publish_many(source)
    alice_end = next(
        e for e in source if e.type == "exam.ended" and e.platform_id == "basecamp-alice"
    )
    forged = dataclasses.replace(
        alice_end, event_id="forged-end", ts_ms=alice_end.ts_ms - 3_600_000
    )
    codec = WireCodec(
        registry_client(settings.registry_url), load_contract(), topic_prefix=settings.topic_prefix
    )
    producer = Producer({"bootstrap.servers": settings.bootstrap})
    producer.produce(
        topic_name("exam.control", settings.topic_prefix),
        key=b"basecamp-alice",
        value=codec.encode(forged),
    )
    assert producer.flush(30) == 0

    out = tmp_path / "rec.jsonl"
    result = CliRunner().invoke(
        record_cmd,
        [
            str(out),
            "--cohort",
            "rec",
            "--bootstrap",
            settings.bootstrap,
            "--registry-url",
            settings.registry_url,
            "--prefix",
            settings.topic_prefix,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "exam.ended forged-end: unauthenticated" in result.output
    mine = [e for e in source if e.platform_id in ("basecamp-alice", "basecamp-bob")]
    recorded = read_jsonl(out)
    assert sorted(e.event_id for e in recorded) == sorted({e.event_id for e in mine})
    check = verify_recording(out, Keyring.from_file(trust_env.keyring_path))
    assert check.ok and check.verified == sum(1 for e in mine if e.type in CONTROL_TYPES)
    rubrics, judge = resolver(), KeywordJudge()
    want = replay_events(mine, rubrics, judge).results
    got = replay_events(recorded, rubrics, judge).results
    assert [(r.exam_id, r.total_pct, r.criteria) for r in got] == [
        (r.exam_id, r.total_pct, r.criteria) for r in want
    ]
    assert len(got) == 2


def test_the_cohorts_collectors_are_rendered_from_the_signed_roster(
    settings: ClientSettings, trust_env: TrustEnv, tmp_path: Path
) -> None:
    """`proctor deploy render --roster-cohort`: collectors for exactly the platforms the
    proctor enrolled; a roster record the proctor did not sign deploys nothing."""
    from services.deploy.cli import deploy
    from services.trust.roster import RosterEntry, roster_topic

    for who in ("alice", "bob"):
        run(settings, cohort, "add", "y3-dep", who)
    run(settings, cohort, "add", "y3-other", "dave")
    forged = RosterEntry("basecamp-mallory", "y3-dep-mallory", "mallory", 1, False, {}, 1,
                         cohort="y3-dep")  # fmt: skip
    producer = Producer({"bootstrap.servers": settings.bootstrap})
    producer.produce(roster_topic(settings.topic_prefix), forged.to_bytes(), b"basecamp-mallory")
    assert producer.flush(10) == 0

    out = tmp_path / "rendered"
    args = ["render", "--roster-cohort", "y3-dep", "--out", str(out), "--bootstrap",
            settings.bootstrap, "--prefix", settings.topic_prefix]  # fmt: skip
    audit = ["--k8s-audit-url", "https://audit.exam.example"]
    result = CliRunner().invoke(deploy, [*args, *audit])
    assert result.exit_code == 0, result.output
    assert "cohort y3-dep: 2 platform(s)" in result.output
    platforms = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert platforms == ["basecamp-alice", "basecamp-bob"]
    top = (out / "kustomization.yaml").read_text()
    assert "from roster cohort y3-dep" in top

    # a base file naming the forged platform is refused, and the earlier render is kept
    base = tmp_path / "base.yaml"
    base.write_text(
        "k8s_audit_url: https://audit.exam.example\n"
        "candidates:\n  - {platform_id: basecamp-mallory, namespace: mallory}\n"
    )
    refused = CliRunner().invoke(deploy, [*args, "--cohort", str(base)])
    assert refused.exit_code != 0
    assert "basecamp-mallory is not in the roster" in refused.output
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == platforms
    # without the audit URL from a flag or a base file: a clear usage error
    missing = CliRunner().invoke(deploy, args)
    assert missing.exit_code != 0 and "no k8s_audit_url" in missing.output
