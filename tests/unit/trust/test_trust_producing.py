"""What producers add: signatures on control events, MACs on signals, clear errors when a
credential is missing; and the worker's refusal to start without trust settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.contract.admission import RecordFacts
from services.contract.dlq import RawRecord, safe_decode
from services.contract.schemas import Contract
from services.contract.wire import WireCodec
from services.core.events import Event
from services.errors import ConfigError
from services.grader.cli import build_admission
from services.grader.settings import GraderSettings
from services.trust.admission import TrustAdmission
from services.trust.credentials import SignalKey, SignalKeys
from services.trust.keys import Keyring, SigningKey
from services.trust.producing import RecordAuth
from services.trust.roster import RosterEntry

pytestmark = pytest.mark.unit
MASTER = b"unit-test-master-secret-0123456789"


def test_headers_are_what_the_worker_admits(
    examples: dict[str, Event],
    codec: WireCodec,
    contract: Contract,
    proctor_key: SigningKey,
    keyring: Keyring,
) -> None:
    auth = RecordAuth(proctor_key, SignalKeys(MASTER), keyring=keyring, contract=contract)
    assert auth.is_proctor
    roster = {
        e.platform_id: RosterEntry(e.platform_id, str(e.data.get("exam_id", "x")), "c")
        for e in examples.values()
    }
    admission = TrustAdmission(keyring, roster, MASTER)
    for e in examples.values():
        if e.type.startswith("grading."):
            continue
        topic, key = codec.topic_for(e.type), e.platform_id.encode()
        # unvalidated form (defaults missing) is what a caller may hand the publisher
        value = codec.encode(e)
        headers = auth.headers(e, topic, key, value)
        decoded = safe_decode(RawRecord(topic, 0, 0, key, value, tuple(headers)), codec)
        assert isinstance(decoded, Event)
        facts = RecordFacts(topic, 0, 0, key, value, headers, decoded.ts_ms)
        assert admission.admit(decoded, facts) is None, e.type


def test_missing_credentials_are_config_errors(
    examples: dict[str, Event], contract: Contract, submission_key: SigningKey
) -> None:
    signal = examples["flink.job"]
    with pytest.raises(ConfigError, match="PROCTOR_ROSTER_SECRET"):
        RecordAuth(submission_key, None, contract=contract).headers(signal, "t", b"k", b"v")
    only_signals = RecordAuth(
        None, SignalKeys(single=SignalKey.derive(MASTER, "x", 1)), contract=contract
    )
    with pytest.raises(ConfigError, match="PROCTOR_SIGNING_KEY"):
        only_signals.headers(examples["exam.ended"], "t", b"k", b"v")
    assert not RecordAuth(submission_key, None, contract=contract).is_proctor
    assert RecordAuth.from_env({}) is None


def test_worker_refuses_to_start_without_trust(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a field left unset comes from the environment: a test session may have exported keys
    for name in ("PROCTOR_TRUSTED_KEYS", "PROCTOR_ROSTER_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="PROCTOR_TRUSTED_KEYS and PROCTOR_ROSTER_SECRET"):
        build_admission(GraderSettings(trusted_keys=None, roster_secret=None))
    with pytest.raises(ConfigError, match=r"needs PROCTOR_ROSTER_SECRET \(docs"):
        build_admission(GraderSettings(trusted_keys=str(tmp_path / "k"), roster_secret=None))
    assert build_admission(GraderSettings(insecure_no_trust=True)) is None
