"""Forged grades on the real stack: each forgery is dead-lettered with its reason and no
grade changes (issue 13, docs/trust.md).

The scenario ``p2_trino_stale_statistics`` (alice right, bob half right, carol wrong) is
published by the proctor (signed, MACed, platforms enrolled); then, straight onto the
topics as anyone with write access could, come the attacks the issue reported: an earlier
``fault.injected`` naming carol's own guess, carol's wrong diagnosis moved onto alice's
platform, bob's diagnosis re-published back-dated, an unsigned ``exam.ended``, a signal
for a platform nobody enrolled, signals carrying another platform's MAC, a signal dated
2099. The worker must grade exactly what ``proctor replay`` grades without the attacks,
and dead-letter each attack with its class.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from confluent_kafka import Producer

from services.core.events import Event
from services.trust.credentials import SignalKey
from services.trust.keys import generate
from services.trust.signing import SIGNATURE_HEADER, SIGNER_HEADER, sign_event
from tests.conftest import TrustEnv
from tests.integration.grader.live import (
    SCENARIOS,
    LiveExam,
    comparable,
    replay_json,
    settle,
    trino_scores,
)

pytestmark = [pytest.mark.adversarial, pytest.mark.integration, pytest.mark.slow]

SCENARIO = "p2_trino_stale_statistics.jsonl"
MS = 60_000


def _one(events: list[Event], platform: str, typ: str) -> Event:
    return next(e for e in events if e.platform_id == platform and e.type == typ)


def _attacks(
    events: list[Event], trust: TrustEnv
) -> list[tuple[str, Event, list[tuple[str, bytes]] | str]]:
    """(expected class, event, headers or "mac:<platform>" / "mac-as:<platform>") per attack."""
    fault = _one(events, "basecamp-carol", "fault.injected")
    bob_diag = _one(events, "basecamp-bob", "diagnosis.submitted")
    carol_diag = _one(events, "basecamp-carol", "diagnosis.submitted")
    alice_diag = _one(events, "basecamp-alice", "diagnosis.submitted")
    alice_end = _one(events, "basecamp-alice", "exam.ended")
    alice_tool = _one(events, "basecamp-alice", "tool.used")
    alice_exam = alice_end.data["exam_id"]

    # 1. an earlier fault.injected naming carol's own guess: unsigned, by a stranger's key
    #    presented under the proctor's id, and by the submission key (a role that may not)
    guess = dataclasses.replace(
        fault,
        event_id="forged-fault-1",
        ts_ms=fault.ts_ms - 5 * MS,
        data={
            **fault.data,
            "fault_id": "fault-0",
            "layer": carol_diag.data["layer"],
            "kind": carol_diag.data["kind"],
        },
    )
    stranger = generate("proctor", trust.proctor.key_id)
    guess2 = dataclasses.replace(guess, event_id="forged-fault-2")
    guess3 = dataclasses.replace(guess, event_id="forged-fault-3")
    # 2. carol's (validly signed) wrong diagnosis moved onto alice's platform, before hers
    carol_signature = sign_event(carol_diag, trust.submission)
    onto_alice = dataclasses.replace(
        carol_diag,
        platform_id="basecamp-alice",
        event_id="forged-diag-alice",
        ts_ms=alice_diag.ts_ms - 10 * MS,
        data={**carol_diag.data, "exam_id": alice_exam},
    )
    # 3. bob's diagnosis re-published back-dated, keeping its signature; and a right one
    #    with the same id, unsigned
    bob_signature = sign_event(bob_diag, trust.submission)
    backdated = dataclasses.replace(bob_diag, ts_ms=bob_diag.ts_ms - 40 * MS)
    right = dataclasses.replace(
        bob_diag,
        event_id="forged-diag-bob",
        ts_ms=bob_diag.ts_ms - 40 * MS,
        data={**bob_diag.data, "kind": "stale_statistics"},
    )
    # 4. an unsigned exam.ended for alice before her diagnosis
    early_end = dataclasses.replace(
        alice_end, event_id="forged-end-alice", ts_ms=alice_diag.ts_ms - 20 * MS
    )
    # 5. a signal for a platform nobody enrolled (MACed with a key derived like a real one)
    ghost = dataclasses.replace(alice_tool, platform_id="basecamp-mallory", event_id="ghost-1")
    # 6. alice's signals carrying carol's MAC: naming carol, and naming alice
    as_carol = dataclasses.replace(alice_tool, event_id="carol-mac-1")
    carol_key_alice_name = dataclasses.replace(alice_tool, event_id="carol-mac-2")
    # 7. a signal dated 2099 (validly MACed: a platform that would move its partition's clock)
    future = dataclasses.replace(alice_tool, event_id="from-2099", ts_ms=4_070_908_800_000)
    return [
        ("unauthenticated", guess, []),
        ("unauthenticated", guess2, sign_event(guess2, stranger)),
        ("forbidden", guess3, sign_event(guess3, trust.submission)),
        ("unauthenticated", onto_alice, carol_signature),
        ("unauthenticated", backdated, bob_signature),
        ("unauthenticated", right, []),
        ("unauthenticated", early_end, []),
        ("unknown_platform", ghost, "mac:basecamp-mallory"),
        ("forbidden", as_carol, "mac:basecamp-carol"),
        ("unauthenticated", carol_key_alice_name, "mac-as:basecamp-carol"),
        ("from_the_future", future, "mac:basecamp-alice"),
    ]


def _headers(
    live: LiveExam, trust: TrustEnv, event: Event, spec: list[tuple[str, bytes]] | str
) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    topic, key = live.codec.topic_for(event.type), event.platform_id.encode()
    value = live.codec.encode(event)
    if isinstance(spec, list):
        return topic, key, value, spec
    mode, _, platform = spec.partition(":")
    headers = SignalKey.derive(trust.master, platform, 1).headers(topic, key, value)
    if mode == "mac-as":  # the MAC of one platform's key under the name of the event's
        headers[0] = (headers[0][0], f"{event.platform_id}:1".encode())
    return topic, key, value, headers


def _publish_with_attacks(
    live: LiveExam, trust: TrustEnv
) -> list[tuple[str, Event, list[tuple[str, bytes]] | str]]:
    events = live.events(SCENARIO)
    live.publish(events)  # the proctor: signed, MACed, platforms enrolled
    attacks = _attacks(events, trust)
    producer = Producer({"bootstrap.servers": live.bootstrap, "partitioner": "murmur2_random"})
    for _cls, event, spec in attacks:
        topic, key, value, headers = _headers(live, trust, event, spec)
        producer.produce(topic, key=key, value=value, headers=headers)
    assert producer.flush(30) == 0
    return attacks


def test_forged_events_are_dead_lettered_and_change_no_grade(
    live: LiveExam, trino: Any, trust_env: TrustEnv
) -> None:
    expected = comparable(replay_json(SCENARIOS / SCENARIO))
    assert {e["passed"] for e in expected.values()} == {True, False}, "a scenario with a pass"
    attacks = _publish_with_attacks(live, trust_env)

    live.start_worker()
    live.wait_ready()
    got = settle(lambda: trino_scores(trino, live.namespace), expected, live.procs)
    assert got == expected, "a forged event changed a grade"

    dead = live.dead_letters(expect=len(attacks), timeout_s=60)
    by_value = {d.raw_value: d for d in dead}
    for cls, event, spec in attacks:
        letter = by_value.get(_headers(live, trust_env, event, spec)[2])
        assert letter is not None, f"{event.event_id} ({event.type}) was not dead-lettered"
        assert letter.error_class == cls, f"{event.event_id}: {letter.reason}"
        assert letter.reason
    assert len(dead) == len(attacks), [d.reason for d in dead]
    # the refused record's headers are kept as evidence
    forged = next(d for d in dead if b"forged-fault-2" in (d.raw_value or b""))
    assert dict(forged.headers).get(SIGNER_HEADER) == trust_env.proctor.key_id.encode()
    assert SIGNATURE_HEADER in dict(forged.headers)


def test_the_same_forgeries_change_grades_without_the_trust_checks(
    live: LiveExam, trino: Any, trust_env: TrustEnv
) -> None:
    """The control: a worker started with --insecure-no-trust grades the forgeries, and
    the grades move (so the test above would see it if a check let one through)."""
    expected = comparable(replay_json(SCENARIOS / SCENARIO))
    _publish_with_attacks(live, trust_env)
    live.start_worker(PROCTOR_INSECURE_NO_TRUST="1")
    live.wait_ready()
    got = settle(lambda: trino_scores(trino, live.namespace), expected, live.procs, timeout_s=120)
    assert set(got) == set(expected)
    changed = {
        exam_id
        for exam_id, want in expected.items()
        if got[exam_id]["criteria"] != want["criteria"]
    }
    alice = next(e for e in expected if e.endswith("alice"))
    assert alice in changed, f"carol's diagnosis on alice's platform changed nothing: {changed}"
