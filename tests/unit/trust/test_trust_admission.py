"""Admission: every refusal class, and the records that pass."""

from __future__ import annotations

import dataclasses

import pytest

from services.contract.admission import RecordFacts
from services.contract.wire import WireCodec
from services.core.events import Event
from services.errors import ConfigError
from services.trust.admission import TrustAdmission, TrustLimits, trust_config
from services.trust.credentials import SignalKey
from services.trust.keys import Keyring, SigningKey
from services.trust.roster import RosterEntry
from services.trust.signing import sign_event

pytestmark = pytest.mark.unit
MASTER = b"unit-test-master-secret-0123456789"
ALICE = "basecamp-alice"


class Roster(dict[str, RosterEntry]):
    pass


@pytest.fixture
def roster(examples: dict[str, Event]) -> Roster:
    exam = examples["exam.started"].data["exam_id"]
    r = Roster()
    for pid in {e.platform_id for e in examples.values()} | {"basecamp-bob"}:
        r[pid] = RosterEntry(pid, exam, pid)
    return r


@pytest.fixture
def admission(keyring: Keyring, roster: Roster) -> TrustAdmission:
    return TrustAdmission(keyring, roster, MASTER, TrustLimits(max_artifact_bytes=1024))


def _facts(
    codec: WireCodec, event: Event, headers: list[tuple[str, bytes]], broker_ts: int | None = None
) -> RecordFacts:
    topic = codec.topic_for(event.type)
    return RecordFacts(
        topic,
        0,
        1,
        event.platform_id.encode(),
        codec.encode(event),
        headers,
        event.ts_ms if broker_ts is None else broker_ts,
    )


def _signal(codec: WireCodec, event: Event, key: SignalKey) -> RecordFacts:
    topic = codec.topic_for(event.type)
    value = codec.encode(event)
    k = event.platform_id.encode()
    return RecordFacts(topic, 0, 1, k, value, key.headers(topic, k, value), event.ts_ms)


def _a_signal(examples: dict[str, Event]) -> Event:
    return examples["flink.job"]


def test_signed_control_and_maced_signal_pass(
    admission: TrustAdmission, examples: dict[str, Event], codec: WireCodec, proctor_key: SigningKey
) -> None:
    for e in examples.values():
        if e.type.startswith("grading."):
            continue
        topic = codec.topic_for(e.type)
        if topic == "exam.control":
            assert admission.admit(e, _facts(codec, e, sign_event(e, proctor_key))) is None, e.type
        else:
            key = SignalKey.derive(MASTER, e.platform_id, 1)
            assert admission.admit(e, _signal(codec, e, key)) is None, e.type


def test_unauthenticated(
    admission: TrustAdmission, examples: dict[str, Event], codec: WireCodec, proctor_key: SigningKey
) -> None:
    e = examples["exam.ended"]
    assert admission.admit(e, _facts(codec, e, [])).error_class == "unauthenticated"  # type: ignore[union-attr]
    s = _a_signal(examples)
    assert admission.admit(s, _facts(codec, s, [])).error_class == "unauthenticated"  # type: ignore[union-attr]
    wrong_master = SignalKey.derive(b"another-master-secret-xyz", s.platform_id, 1)
    r = admission.admit(s, _signal(codec, s, wrong_master))
    assert r is not None and r.error_class == "unauthenticated" and "MAC" in r.reason
    # a valid MAC over another value (the event was altered after MACing)
    facts = _signal(codec, s, SignalKey.derive(MASTER, s.platform_id, 1))
    altered = dataclasses.replace(facts, value=facts.value + b"\0")
    assert admission.admit(s, altered).error_class == "unauthenticated"  # type: ignore[union-attr]


def test_forbidden(
    admission: TrustAdmission,
    examples: dict[str, Event],
    codec: WireCodec,
    submission_key: SigningKey,
    proctor_key: SigningKey,
    roster: Roster,
) -> None:
    fault = examples["fault.injected"]
    r = admission.admit(fault, _facts(codec, fault, sign_event(fault, submission_key)))
    assert r is not None and r.error_class == "forbidden"
    diag = examples["diagnosis.submitted"]
    assert admission.admit(diag, _facts(codec, diag, sign_event(diag, submission_key))) is None
    # a signal MACed with another platform's key, naming that platform
    s = _a_signal(examples)
    bob_key = SignalKey.derive(MASTER, "basecamp-bob", 1)
    r = admission.admit(s, _signal(codec, s, bob_key))
    assert r is not None and r.error_class == "forbidden" and "only speak for itself" in r.reason
    # revoked: an old generation, and the revoked flag
    roster[s.platform_id] = roster[s.platform_id].revoke()
    r = admission.admit(s, _signal(codec, s, SignalKey.derive(MASTER, s.platform_id, 1)))
    assert r is not None and r.error_class == "forbidden" and "not current" in r.reason
    r = admission.admit(s, _signal(codec, s, SignalKey.derive(MASTER, s.platform_id, 2)))
    assert r is not None and r.error_class == "forbidden" and "revoked" in r.reason
    diag2 = dataclasses.replace(diag, event_id="d-2")
    roster[diag.platform_id] = roster[diag.platform_id].revoke()
    r = admission.admit(diag2, _facts(codec, diag2, sign_event(diag2, submission_key)))
    assert r is not None and r.error_class == "forbidden"
    # the proctor may still speak for a revoked platform (e.g. to end its exam)
    ended = examples["exam.ended"]
    assert admission.admit(ended, _facts(codec, ended, sign_event(ended, proctor_key))) is None


def test_submission_for_another_exam_is_forbidden(
    admission: TrustAdmission,
    examples: dict[str, Event],
    codec: WireCodec,
    submission_key: SigningKey,
) -> None:
    diag = examples["diagnosis.submitted"]
    other = dataclasses.replace(diag, data={**diag.data, "exam_id": "another-exam"})
    r = admission.admit(other, _facts(codec, other, sign_event(other, submission_key)))
    assert r is not None and r.error_class == "forbidden" and "enrolled for" in r.reason


def test_unknown_platform(
    admission: TrustAdmission, examples: dict[str, Event], codec: WireCodec, proctor_key: SigningKey
) -> None:
    s = dataclasses.replace(_a_signal(examples), platform_id="nobody")
    r = admission.admit(s, _signal(codec, s, SignalKey.derive(MASTER, "nobody", 1)))
    assert r is not None and r.error_class == "unknown_platform"
    e = dataclasses.replace(examples["exam.started"], platform_id="nobody")
    r = admission.admit(e, _facts(codec, e, sign_event(e, proctor_key)))
    assert r is not None and r.error_class == "unknown_platform"


def test_from_the_future(
    admission: TrustAdmission, examples: dict[str, Event], codec: WireCodec, proctor_key: SigningKey
) -> None:
    s = _a_signal(examples)
    key = SignalKey.derive(MASTER, s.platform_id, 1)
    facts = _signal(codec, s, key)
    within = dataclasses.replace(facts, broker_ts_ms=s.ts_ms - 120_000)
    assert admission.admit(s, within) is None
    ahead = dataclasses.replace(facts, broker_ts_ms=s.ts_ms - 120_001)
    r = admission.admit(s, ahead)
    assert r is not None and r.error_class == "from_the_future"
    e = examples["fault.injected"]
    r = admission.admit(e, _facts(codec, e, sign_event(e, proctor_key), broker_ts=e.ts_ms - 10**9))
    assert r is not None and r.error_class == "from_the_future"
    # no broker timestamp: the check cannot apply
    assert admission.admit(s, dataclasses.replace(facts, broker_ts_ms=None)) is None


def test_oversized_artifact(
    admission: TrustAdmission,
    examples: dict[str, Event],
    codec: WireCodec,
    submission_key: SigningKey,
) -> None:
    art = examples["artifact.submitted"]
    big = dataclasses.replace(art, event_id="big", data={**art.data, "content": "é" * 600})
    r = admission.admit(big, _facts(codec, big, sign_event(big, submission_key)))
    assert r is not None and r.error_class == "oversized" and "1200 bytes" in r.reason
    fits = dataclasses.replace(art, event_id="fits", data={**art.data, "content": "a" * 1024})
    assert admission.admit(fits, _facts(codec, fits, sign_event(fits, submission_key))) is None


def test_conflicting_duplicate(
    admission: TrustAdmission, examples: dict[str, Event], codec: WireCodec, proctor_key: SigningKey
) -> None:
    e = examples["fault.injected"]
    assert admission.admit(e, _facts(codec, e, sign_event(e, proctor_key))) is None
    # the same record again (a replay after a restart) is fine
    assert admission.admit(e, _facts(codec, e, sign_event(e, proctor_key))) is None
    other = dataclasses.replace(e, ts_ms=e.ts_ms - 60_000)
    r = admission.admit(other, _facts(codec, other, sign_event(other, proctor_key)))
    assert r is not None and r.error_class == "conflicting_duplicate"


def test_refresh_on_unknown_platform(
    keyring: Keyring, examples: dict[str, Event], codec: WireCodec
) -> None:
    class Late(dict[str, RosterEntry]):
        refreshed_at = 0.0
        calls = 0

        def refresh(self, timeout_s: float = 10.0) -> int:
            self.calls += 1
            self["late"] = RosterEntry("late", "x", "late")
            self.refreshed_at = 10**12
            return 1

    roster = Late()
    admission = TrustAdmission(keyring, roster, MASTER, min_refresh_interval_s=0)
    s = dataclasses.replace(_a_signal(examples), platform_id="late")
    facts = _signal(codec, s, SignalKey.derive(MASTER, "late", 1))
    assert admission.admit(s, facts).error_class == "unknown_platform"  # type: ignore[union-attr]
    assert admission.admit_after_refresh(s, facts) is None and roster.calls == 1
    # a roster read after the record was produced is not read again for it
    n = dataclasses.replace(s, platform_id="never")
    nf = _signal(codec, n, SignalKey.derive(MASTER, "never", 1))
    assert admission.admit_after_refresh(n, nf).error_class == "unknown_platform"  # type: ignore[union-attr]
    assert roster.calls == 1


def test_config(tmp_path: object, submission_key: SigningKey) -> None:
    with pytest.raises(ConfigError, match="PROCTOR_ROSTER_SECRET"):
        trust_config({})
    from pathlib import Path

    ring = Path(str(tmp_path)) / "ring"
    ring.write_text(Keyring.of(submission_key).__iter__().__next__().line())
    env = {"PROCTOR_ROSTER_SECRET": "x" * 20, "PROCTOR_TRUSTED_KEYS": str(ring)}
    with pytest.raises(ConfigError, match="no proctor key"):
        trust_config(env)
    with pytest.raises(ConfigError, match="PROCTOR_MAX_SKEW_S"):
        TrustLimits.from_env({"PROCTOR_MAX_SKEW_S": "soon"})
    assert TrustLimits.from_env({"PROCTOR_MAX_SKEW_S": "5"}).max_skew_ms == 5000
