"""Attacks on the receivers and the submission endpoint, on the real broker and registry.

Each attack ends by reading the real topics: nothing the attacker sent is published (no
signal, no dead letter from an unauthenticated sender, no heartbeat for a made-up platform).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry.error import SchemaRegistryError

from services.collectors.openlineage_kafka import LineageBridge
from services.collectors.receivers import ALL_SOURCES
from services.collectors.webhook import Receiver, ReceiverSettings
from services.collectors.webhook_auth import derive_secret, secret_env, sign, sign_proctor
from services.collectors.webhook_guard import StaticRoster
from services.collectors.webhook_roster import LiveRoster
from services.collectors.webhook_run import BackgroundReceiver, build_receiver
from services.contract.registry import Registry
from services.contract.schemas import TOPICS_BY_NAME, load_contract, topic_name
from services.contract.settings import ClientSettings
from services.contract.topics import admin_client, delete_topics, ensure_topics
from services.contract.wire import WireCodec, registry_client
from services.submission.server import (
    BackgroundSubmissionServer,
    SubmissionServer,
    SubmissionSettings,
)
from services.trust.credentials import submission_token
from services.trust.keys import Keyring, generate
from services.trust.roster import RosterEntry, RosterView, publish_entries, roster_topic
from services.trust.signing import verify_event
from tests.integration.test_receivers import Rig, _closed_port, _wait_for_leaders

pytestmark = [pytest.mark.adversarial, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
MASTER = "adv-master-" + "0123456789abcdef" * 2
ALICE, BOB = "basecamp-alice", "basecamp-bob"
TOPICS = (
    "platform.argocd",
    "platform.k8s-audit",
    "platform.gitops",
    "platform.openlineage",
    "platform.trino",
    "platform.collectors",
    "grading.dlq",
    "exam.control",
)
TYPES = [
    "argocd.sync",
    "k8s.audit",
    "gitops.merge",
    "openlineage.run",
    "trino.query",
    "collector.heartbeat",
    "grading.dead_letter",
    "pipeline.declared",
    "diagnosis.submitted",
    "artifact.submitted",
    "self_grade.submitted",
]
MiB = 1024 * 1024


class AdvRig(Rig):
    """The receivers' rig, with exam.control among the topics watched."""

    def ends(self) -> dict[str, int]:
        return {t: self.end(t) for t in TOPICS}


@pytest.fixture(scope="module")
def rig(kafka_bootstrap: str, registry_url: str) -> Iterator[Rig]:
    prefix = f"adv-rcv-{uuid.uuid4().hex[:8]}."
    settings = ClientSettings(kafka_bootstrap, registry_url, prefix)
    contract = load_contract()
    client = registry_client(registry_url)
    admin = admin_client(kafka_bootstrap)
    ensure_topics(admin, prefix=prefix, specs=[TOPICS_BY_NAME[t] for t in TOPICS])
    Registry(client, registry_url, contract, prefix).register_all(TYPES)
    rig = AdvRig(prefix, settings, WireCodec(client, contract, topic_prefix=prefix))
    _wait_for_leaders(rig)
    yield rig
    delete_topics(admin, [topic_name(t, prefix) for t in TOPICS])
    with contextlib.suppress(Exception):
        delete_topics(admin, [roster_topic(prefix)])
    for event_type in TYPES:
        subject = contract.schema(event_type).subject(prefix)
        for permanent in (False, True):
            with contextlib.suppress(SchemaRegistryError):
                client.delete_subject(subject, permanent=permanent)


def _env() -> dict[str, str]:
    return {secret_env(s.name): MASTER for s in ALL_SOURCES}


def _receiver(rig: Rig, **options: object) -> Receiver:
    """The default deployment: per-platform secrets, a roster of alice and bob."""
    settings: dict[str, object] = {"heartbeat_s": 3600.0, **options}
    return build_receiver(
        ALL_SOURCES,
        rig.settings,
        ReceiverSettings(**settings),  # type: ignore[arg-type]
        known_platforms=StaticRoster.of((ALICE, BOB)),
        env=_env(),
    )


@pytest.fixture(scope="module")
def url(rig: Rig) -> Iterator[str]:
    with BackgroundReceiver(_receiver(rig)) as port:
        yield f"http://127.0.0.1:{port}"


def token(source: str, platform: str) -> str:
    return derive_secret(MASTER, source, platform, 1)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}


def fixture(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


def settle() -> None:
    time.sleep(0.5)  # anything produced by mistake would have been acknowledged by now


# ---- platform binding ------------------------------------------------------------------------


def test_platform_a_token_is_refused_at_another_platforms_path(rig: Rig, url: str) -> None:
    body = fixture("argocd/notification-automated-succeeded.json")
    before = rig.ends()
    alices = bearer(token("argocd", ALICE))
    at_bob = httpx.post(f"{url}/platforms/{BOB}/argocd", content=body, headers=alices)
    assert at_bob.status_code == 401
    at_victim = httpx.post(f"{url}/platforms/VICTIM/argocd", content=body, headers=alices)
    assert at_victim.status_code == 404
    # The shared master itself is no platform's token.
    master = httpx.post(f"{url}/platforms/{BOB}/argocd", content=body, headers=bearer(MASTER))
    assert master.status_code == 401
    settle()
    assert rig.ends() == before
    # And alice's token does work for alice: the refusals above are the binding, not a bug.
    own = httpx.post(f"{url}/platforms/{ALICE}/argocd", content=body, headers=alices)
    assert own.status_code == 200, own.text


def test_a_captured_signed_delivery_does_not_replay(rig: Rig, url: str) -> None:
    body = fixture("gitops/push-main.json")
    delivery = str(uuid.uuid4())
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(token("gitops", ALICE), body),
        "Content-Type": "application/json",
    }
    first = httpx.post(f"{url}/platforms/{ALICE}/gitops", content=body, headers=headers)
    assert first.status_code == 200, first.text
    before = rig.ends()
    same = httpx.post(f"{url}/platforms/{ALICE}/gitops", content=body, headers=headers)
    assert same.status_code == 409
    other = httpx.post(f"{url}/platforms/{BOB}/gitops", content=body, headers=headers)
    assert other.status_code == 401
    renamed = dict(headers, **{"X-GitHub-Delivery": str(uuid.uuid4())})
    same_new_id = httpx.post(f"{url}/platforms/{ALICE}/gitops", content=body, headers=renamed)
    assert same_new_id.status_code == 409  # the signature is the same bytes: a replay
    other_new_id = httpx.post(f"{url}/platforms/{BOB}/gitops", content=body, headers=renamed)
    assert other_new_id.status_code == 401
    settle()
    assert rig.ends() == before
    merges = [e for e in rig.read("platform.gitops") if e.event_id in first.json()["event_ids"]]
    assert [e.platform_id for e in merges] == [ALICE]


def test_a_stale_proctor_signed_delivery_is_refused(rig: Rig, url: str) -> None:
    body = fixture("argocd/notification-manual-failed.json")
    secret = token("argocd", ALICE)
    before = rig.ends()
    old = sign_proctor(secret, ALICE, body, time.time() - 3600)
    stale = httpx.post(f"{url}/platforms/{ALICE}/argocd", content=body, headers=old)
    assert stale.status_code == 401 and "replay" in stale.json()["error"]
    fresh = sign_proctor(secret, ALICE, body, time.time())
    onto_bob = httpx.post(f"{url}/platforms/{BOB}/argocd", content=body, headers=fresh)
    assert onto_bob.status_code == 401
    settle()
    assert rig.ends() == before


def test_a_thousand_made_up_platforms_get_404_and_no_heartbeat(rig: Rig) -> None:
    body = fixture("argocd/notification-automated-succeeded.json")
    made_up = [f"made-up-{uuid.uuid4().hex[:12]}" for _ in range(1000)]
    receiver = _receiver(rig, heartbeat_s=0.3)
    before = rig.ends()
    with BackgroundReceiver(receiver) as port, httpx.Client() as client:
        statuses = {
            client.post(
                f"http://127.0.0.1:{port}/platforms/{p}/argocd",
                content=body,
                headers=bearer(MASTER),
            ).status_code
            for p in made_up
        }
        time.sleep(2.0)  # several heartbeat rounds
        assert not receiver.state.health, "no state was kept for any made-up platform"
    assert statuses == {404}
    after = rig.ends()
    assert after == before  # no heartbeat (the receiver serves no platform yet), nothing else
    beats = [e for e in rig.read("platform.collectors") if e.platform_id.startswith("made-up-")]
    assert beats == []


# ---- receivers that hold ---------------------------------------------------------------------


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _upload(port: int, path: str, size: int, headers: str, out: list[str]) -> None:
    """Send headers then up to ``size`` body bytes; record the status line (or the reset)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sent = 0
    try:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n{headers}\r\n"
        ).encode()
        sock.sendall(head)
        chunk = b"x" * (256 * 1024)
        with contextlib.suppress(OSError):
            while sent < size:
                sock.sendall(chunk[: size - sent])
                sent += min(len(chunk), size - sent)
        try:
            status = sock.recv(200).split(b"\r\n", 1)[0].decode()
        except OSError as exc:
            status = f"reset ({type(exc).__name__})"
        out.append(f"{status} after {sent} bytes")
    finally:
        sock.close()


@contextlib.contextmanager
def _cli_receiver(rig: Rig, *args: str) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    port = _closed_port()
    env = {
        **os.environ,
        **_env(),
        "PROCTOR_KAFKA_BOOTSTRAP": rig.settings.bootstrap,
        "PROCTOR_SCHEMA_REGISTRY_URL": rig.settings.registry_url,
        "PROCTOR_TOPIC_PREFIX": rig.prefix,
    }
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "services.cli", "collect", "webhooks", "--port", str(port)),
            *("--platform", ALICE, "--platform", BOB, "--heartbeat-interval", "3600", *args),
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        yield port, proc
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=30)
        if proc.poll() is None:
            proc.kill()


def test_unauthenticated_large_uploads_are_refused_before_reading(
    rig: Rig, record_property: object
) -> None:
    before = rig.ends()
    with _cli_receiver(rig) as (port, proc):
        for _ in range(3):  # warm: the first requests allocate the handler's buffers
            httpx.post(f"http://127.0.0.1:{port}/platforms/{ALICE}/argocd", content=b"{}")
        start = _rss_kib(proc.pid)
        peak = start
        results: list[str] = []
        threads = [
            threading.Thread(
                target=_upload,
                args=(port, f"/platforms/{ALICE}/argocd", 15 * MiB, "", results),
            )
            for _ in range(20)
        ]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, _rss_kib(proc.pid))
            time.sleep(0.02)
        for t in threads:
            t.join()
        # Signed schemes too: a missing or malformed signature is refused from the headers.
        gitops: list[str] = []
        _upload(port, f"/platforms/{ALICE}/gitops", 15 * MiB, "X-GitHub-Event: push\r\n", gitops)
        peak = max(peak, _rss_kib(proc.pid))
    growth_mib = (peak - start) / 1024
    record_property("rss_growth_mib", round(growth_mib, 1))  # type: ignore[operator]
    print(
        f"\nreceiver RSS {start / 1024:.1f} MiB -> peak {peak / 1024:.1f} MiB "
        f"(+{growth_mib:.1f} MiB) over 20 unauthenticated 15 MiB uploads"
    )
    assert len(results) == 20
    assert all(r.startswith("HTTP/1.1 401") or r.startswith("reset") for r in results), results
    assert any(r.startswith("HTTP/1.1 401") for r in results), results
    # Not one upload was read to its end: the receiver closed before the body was taken.
    assert all(not r.endswith(f"after {15 * MiB} bytes") or "401" in r for r in results)
    assert gitops[0].startswith("HTTP/1.1 401") or gitops[0].startswith("reset"), gitops
    assert growth_mib < 40, f"RSS grew {growth_mib:.1f} MiB"
    settle()
    after = rig.ends()
    # The receiver's own last heartbeats at shutdown (its two platforms), healthy; else nothing.
    assert {t: n for t, n in after.items() if t != "platform.collectors"} == {
        t: n for t, n in before.items() if t != "platform.collectors"
    }
    beats = rig.read("platform.collectors")[before["platform.collectors"] :]
    assert {b.platform_id for b in beats} <= {ALICE, BOB}
    assert all(b.data["healthy"] is True for b in beats)


def test_a_slow_header_is_cut(rig: Rig) -> None:
    """A sender dribbling its headers at 1 byte/s is disconnected at the header timeout."""
    receiver = _receiver(rig, header_timeout_s=2.0)
    head = f"POST /platforms/{ALICE}/argocd HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"
    sent = 0
    with BackgroundReceiver(receiver) as port:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        cut = False
        try:
            for byte in head.encode():
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    cut = True
                    break
                sent += 1
                sock.settimeout(1.0)
                try:
                    if sock.recv(1) == b"":  # the server closed
                        cut = True
                        break
                except TimeoutError:
                    pass
                except ConnectionResetError:  # the server closed before we read
                    cut = True
                    break
        finally:
            sock.close()
    assert cut, "the slow sender was never disconnected"
    assert sent < len(head), "the whole header got through"


def test_an_oversized_payload_is_413_with_a_dead_letter_and_the_collector_stays_healthy(
    rig: Rig,
) -> None:
    receiver = _receiver(rig, heartbeat_s=0.3)
    secret = token("openlineage", ALICE)
    run_id = str(uuid.uuid4())
    doc = {
        "eventType": "COMPLETE",
        "eventTime": "2026-11-27T10:01:00.123Z",
        "run": {"runId": run_id, "facets": {}},
        "job": {"namespace": "flink", "name": "orders-enrich"},
        "producer": "https://github.com/apache/flink",
    }
    with BackgroundReceiver(receiver) as port:
        base = f"http://127.0.0.1:{port}/platforms/{ALICE}/api/v1/lineage"
        before = rig.ends()
        # Over the 1 MiB cap: 413 and a truncated dead letter.
        big = dict(doc, run={"runId": run_id, "facets": {"pad": {"x": "y" * (2 * MiB)}}})
        over_cap = httpx.post(base, content=json.dumps(big).encode(), headers=bearer(secret))
        assert over_cap.status_code == 413, over_cap.text
        # Under the cap but over what platform.openlineage takes once encoded: 413, not 503.
        near = dict(doc, run={"runId": run_id, "facets": {"pad": {"x": "y" * 1_000_100}}})
        body = json.dumps(near).encode()
        assert len(body) < MiB
        over_topic = httpx.post(base, content=body, headers=bearer(secret))
        assert over_topic.status_code == 413, over_topic.text
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        time.sleep(1.5)  # heartbeat rounds after the refusals
    after = rig.ends()
    assert after["platform.openlineage"] == before["platform.openlineage"]
    assert after["grading.dlq"] == before["grading.dlq"] + 2
    letters = [
        e
        for e in rig.read("grading.dlq")
        if e.data["source"] == "webhook:openlineage" and e.data["error_class"] == "oversized"
    ]
    assert len(letters) == 2
    assert any("truncated" in e.data["reason"] for e in letters)
    beats = [
        e
        for e in rig.read("platform.collectors")
        if e.platform_id == ALICE and e.data["collector"] == "openlineage"
    ]
    assert beats and all(b.data["healthy"] is True for b in beats)


def test_a_poisoned_record_on_the_bridge_is_dead_lettered_and_the_bridge_goes_on(
    rig: Rig, kafka_bootstrap: str, new_topic: object
) -> None:
    source = new_topic("ol-poison")  # type: ignore[operator]
    good = {
        "eventType": "START",
        "eventTime": "2026-11-27T10:01:00.000Z",
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": "flink", "name": "orders-enrich"},
        "producer": "https://github.com/apache/flink",
    }
    after_poison = dict(good, run={"runId": str(uuid.uuid4())})
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(source, value=json.dumps(good).encode())
    producer.produce(source, key=b"poison-deep", value=b"[" * 200_000)  # RecursionError
    producer.produce(source, key=b"poison-type", value=b'{"run": 5, "job": {}}')
    producer.produce(source, value=json.dumps(after_poison).encode())
    producer.flush(10)
    before_runs = rig.end("platform.openlineage")
    bridge = LineageBridge(
        rig.settings,
        source_bootstrap=kafka_bootstrap,
        topic=source,
        group_id=f"adv-bridge-{uuid.uuid4().hex[:8]}",
        platform_id=ALICE,
        heartbeat_s=0.5,
    )
    bridge.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(bridge.positions.values()) < 4:
            time.sleep(0.2)
        assert sum(bridge.positions.values()) == 4, bridge.error
        assert bridge._thread is not None and bridge._thread.is_alive()
        assert bridge.health_error() is None
    finally:
        bridge.stop()
    assert rig.end("platform.openlineage") == before_runs + 2
    runs = {e.data["run"]["runId"] for e in rig.read("platform.openlineage")}
    assert {good["run"]["runId"], after_poison["run"]["runId"]} <= runs  # type: ignore[index]
    letters = {
        e.platform_id: e.data
        for e in rig.read("grading.dlq")
        if e.data.get("source_topic") == source
    }
    assert set(letters) == {"poison-deep", "poison-type"}
    assert letters["poison-deep"]["error_class"] == "other"
    assert "RecursionError" in letters["poison-deep"]["reason"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_bridge_thread_makes_its_collector_unhealthy(
    rig: Rig, kafka_bootstrap: str, new_topic: object
) -> None:
    source = new_topic("ol-dead")  # type: ignore[operator]
    bridge = LineageBridge(
        rig.settings,
        source_bootstrap=kafka_bootstrap,
        topic=source,
        group_id=f"adv-dead-{uuid.uuid4().hex[:8]}",
        platform_id=BOB,
    )

    def die(timeout_s: float = 1.0) -> object:
        raise SystemExit("killed by the test")

    bridge.poll_once = die  # type: ignore[method-assign]
    receiver = _receiver(rig, heartbeat_s=0.3)
    receiver.watch(bridge.collector, bridge.platform_id, bridge.health_error)
    with BackgroundReceiver(receiver):
        bridge.start()
        assert bridge._thread is not None
        bridge._thread.join(10)
        assert not bridge._thread.is_alive()
        time.sleep(1.5)
    bridge.consumer.close()
    bridge.sender.close(1.0)
    beats = [
        e
        for e in rig.read("platform.collectors")
        if e.platform_id == BOB and e.data["collector"] == "openlineage"
    ]
    assert beats and beats[-1].data["healthy"] is False
    assert "thread stopped" in beats[-1].data["error"]
    assert "killed by the test" in beats[-1].data["error"]


# ---- the submission endpoint -----------------------------------------------------------------


@pytest.fixture(scope="module")
def submission(rig: Rig) -> Iterator[tuple[str, Keyring]]:
    key = generate("submission")
    server = SubmissionServer.build(
        rig.settings,
        MASTER.encode(),
        key,
        StaticRoster({ALICE: 1, BOB: 2}),
        SubmissionSettings(),
    )
    with BackgroundSubmissionServer(server) as port:
        yield f"http://127.0.0.1:{port}", Keyring.of(key)


def submit_headers(platform: str, exam: str, generation: int = 1) -> dict[str, str]:
    tok = submission_token(MASTER.encode(), platform, exam, generation)
    return {"Authorization": f"Bearer {tok}"}


def test_a_submission_naming_another_platform_or_exam_is_refused(
    rig: Rig, submission: tuple[str, Keyring]
) -> None:
    url, _ = submission
    before = rig.ends()
    headers = submit_headers(ALICE, "exam-1")
    diagnosis = {"layer": "cdc", "kind": "schema_drift", "summary": "a column was renamed"}
    as_bob = httpx.post(
        f"{url}/v1/submissions/diagnosis.submitted",
        json={**diagnosis, "platform_id": BOB},
        headers=headers,
    )
    assert as_bob.status_code == 403
    other_exam = httpx.post(
        f"{url}/v1/submissions/self_grade.submitted",
        json={"score_pct": 100.0, "exam_id": "exam-2"},
        headers=headers,
    )
    assert other_exam.status_code == 403
    proctors = httpx.post(
        f"{url}/v1/submissions/exam.ended", json={"exam_id": "exam-1"}, headers=headers
    )
    assert proctors.status_code == 404
    forged = submit_headers(ALICE, "exam-1").copy()
    forged["Authorization"] = forged["Authorization"][:-4] + "AAAA"
    bad_token = httpx.post(
        f"{url}/v1/submissions/self_grade.submitted", json={"score_pct": 1.0}, headers=forged
    )
    assert bad_token.status_code == 401
    revoked = httpx.post(  # bob is at generation 2: a generation-1 token is void
        f"{url}/v1/submissions/self_grade.submitted",
        json={"score_pct": 1.0},
        headers=submit_headers(BOB, "exam-1", 1),
    )
    assert revoked.status_code == 401
    settle()
    assert rig.ends() == before


def test_a_submissions_ts_and_event_id_are_the_endpoints(
    rig: Rig, submission: tuple[str, Keyring]
) -> None:
    url, keyring = submission
    before = rig.end("exam.control")
    sent_at = int(time.time() * 1000)
    response = httpx.post(
        f"{url}/v1/submissions/diagnosis.submitted",
        json={
            "layer": "flink",
            "kind": "checkpoint_failure",
            "summary": "the sink's checkpoint timed out",
            "ts": "2001-01-01T00:00:00.000Z",
            "event_id": "chosen-by-the-candidate",
            "platform_id": ALICE,
            "exam_id": "exam-1",
        },
        headers=submit_headers(ALICE, "exam-1"),
    )
    assert response.status_code == 201, response.text
    answer = response.json()
    assert rig.end("exam.control") == before + 1
    (event,) = [e for e in rig.read("exam.control") if e.event_id == answer["event_id"]]
    assert event.event_id != "chosen-by-the-candidate"
    assert event.ts_ms >= sent_at - 1000  # the receive time, not 2001
    assert event.platform_id == ALICE and event.data["exam_id"] == "exam-1"
    assert event.data["layer"] == "flink"
    # The record is signed by the endpoint's submission key over the event as decoded.
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(rig.settings.kafka_config(**{"group.id": f"adv-{uuid.uuid4().hex}"}))
    try:
        assert event.source is not None
        consumer.assign(
            [TopicPartition(event.source.topic, event.source.partition, event.source.offset)]
        )
        msg = consumer.poll(10)
        assert msg is not None and msg.error() is None
        assert verify_event(event, msg.headers(), keyring, {"submission"}) is None
        assert verify_event(event, msg.headers(), keyring, {"proctor"}) is not None
    finally:
        consumer.close()


def test_a_submission_with_an_idempotency_key_is_one_event(
    rig: Rig, submission: tuple[str, Keyring]
) -> None:
    url, _ = submission
    headers = {**submit_headers(ALICE, "exam-1"), "Idempotency-Key": str(uuid.uuid4())}
    first = httpx.post(
        f"{url}/v1/submissions/self_grade.submitted", json={"score_pct": 80.0}, headers=headers
    )
    again = httpx.post(
        f"{url}/v1/submissions/self_grade.submitted", json={"score_pct": 80.0}, headers=headers
    )
    assert first.status_code == again.status_code == 201
    assert first.json()["event_id"] == again.json()["event_id"]


def test_the_submit_client_posts_with_the_candidates_token(
    rig: Rig, submission: tuple[str, Keyring]
) -> None:
    from click.testing import CliRunner

    from services.submission.cli import submit_group

    url, _ = submission
    tok = submission_token(MASTER.encode(), ALICE, "exam-1", 1)
    before = rig.end("exam.control")
    result = CliRunner().invoke(
        submit_group,
        ["self-grade", "72.5"],
        env={"PROCTOR_SUBMISSION_URL": url, "PROCTOR_SUBMISSION_TOKEN": tok},
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert rig.end("exam.control") == before + 1
    (event,) = [e for e in rig.read("exam.control") if e.event_id == answer["event_id"]]
    assert event.type == "self_grade.submitted" and event.data["score_pct"] == 72.5
    refused = CliRunner().invoke(
        submit_group,
        ["self-grade", "50"],
        env={"PROCTOR_SUBMISSION_URL": url, "PROCTOR_SUBMISSION_TOKEN": tok + "x"},
    )
    assert refused.exit_code != 0 and "401" in refused.output
    assert rig.end("exam.control") == before + 1


def test_a_revoked_platform_is_refused_by_the_receivers_and_the_endpoint(
    rig: Rig, trust_env: object
) -> None:
    """The roster wired in: enrolled at generation 1, served; revoked, refused everywhere."""
    platform = f"basecamp-r{uuid.uuid4().hex[:6]}"
    entry = RosterEntry(platform, "exam-r", "carol", 1, False)
    proctor_key = trust_env.proctor  # type: ignore[attr-defined]
    publish_entries(rig.settings, [entry], proctor_key)
    live = LiveRoster(RosterView(rig.settings, Keyring.from_env()), interval_s=0.3)
    live.view.refresh()
    assert live(platform) == 1 and live.exam_of(platform) == "exam-r"
    live.start()
    receiver = build_receiver(
        ALL_SOURCES,
        rig.settings,
        ReceiverSettings(heartbeat_s=3600.0),
        known_platforms=live,
        env=_env(),
    )
    server = SubmissionServer.build(
        rig.settings, MASTER.encode(), generate("submission"), live, exam_of=live.exam_of
    )
    body = fixture("argocd/notification-automated-succeeded.json")
    secret = derive_secret(MASTER, "argocd", platform, 1)
    grade = {"score_pct": 60.0}
    try:
        with BackgroundReceiver(receiver) as port, BackgroundSubmissionServer(server) as sport:
            hook = f"http://127.0.0.1:{port}/platforms/{platform}/argocd"
            submit_url = f"http://127.0.0.1:{sport}/v1/submissions/self_grade.submitted"
            assert httpx.post(hook, content=body, headers=bearer(secret)).status_code == 200
            ok = httpx.post(submit_url, json=grade, headers=submit_headers(platform, "exam-r"))
            assert ok.status_code == 201, ok.text
            other_exam = httpx.post(
                submit_url, json=grade, headers=submit_headers(platform, "exam-other")
            )
            assert other_exam.status_code == 401
            publish_entries(rig.settings, [entry.revoke()], proctor_key)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and live(platform) is not None:
                time.sleep(0.1)
            assert live(platform) is None
            before = rig.ends()
            refused = httpx.post(hook, content=body, headers=bearer(secret))
            assert refused.status_code == 404
            new_gen = bearer(derive_secret(MASTER, "argocd", platform, 2))
            assert httpx.post(hook, content=body, headers=new_gen).status_code == 404
            void = httpx.post(submit_url, json=grade, headers=submit_headers(platform, "exam-r"))
            assert void.status_code == 401
            settle()
            assert rig.ends() == before
    finally:
        live.stop()


def test_signals_are_maced_at_the_platforms_current_generation(rig: Rig, trust_env: object) -> None:
    """After a revoke and reinstate (generation 2) the receiver's MAC names generation 2."""
    from confluent_kafka import Consumer, TopicPartition

    from services.trust.credentials import SignalKey, check_mac, mac_headers_of

    receiver = build_receiver(
        ALL_SOURCES,
        rig.settings,
        ReceiverSettings(heartbeat_s=3600.0),
        known_platforms=StaticRoster({ALICE: 2}),
        env=_env(),
    )
    body = fixture("argocd/notification-manual-failed.json")
    with BackgroundReceiver(receiver) as port:
        url = f"http://127.0.0.1:{port}/platforms/{ALICE}/argocd"
        old = httpx.post(url, content=body, headers=bearer(token("argocd", ALICE)))
        assert old.status_code == 401  # the generation-1 secret is void
        secret = derive_secret(MASTER, "argocd", ALICE, 2)
        response = httpx.post(url, content=body, headers=bearer(secret))
        assert response.status_code == 200, response.text
    (event,) = [
        e for e in rig.read("platform.argocd") if e.event_id in response.json()["event_ids"]
    ]
    assert event.source is not None
    consumer = Consumer(rig.settings.kafka_config(**{"group.id": f"adv-{uuid.uuid4().hex}"}))
    try:
        consumer.assign(
            [TopicPartition(event.source.topic, event.source.partition, event.source.offset)]
        )
        msg = consumer.poll(10)
        assert msg is not None and msg.error() is None
        platform, tag = mac_headers_of(msg.headers())
        assert platform == f"{ALICE}:2".encode()
        key = SignalKey.derive(trust_env.master, ALICE, 2)  # type: ignore[attr-defined]
        assert tag is not None and check_mac(key.key, tag, msg.topic(), msg.key(), msg.value())
    finally:
        consumer.close()
