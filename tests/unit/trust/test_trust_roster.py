"""The roster's records: signed by the proctor, verified on load; forged, foreign-signed,
tombstoned or older records are ignored and counted; a revoke bumps the generation."""

from __future__ import annotations

import json

import pytest

from services.trust.keys import Keyring, SigningKey, generate
from services.trust.roster import RosterEntry, RosterView, sign_entry, verify_record
from services.trust.signing import SIGNATURE_HEADER

pytestmark = pytest.mark.unit


def _view(keyring: Keyring) -> RosterView:
    # the record logic without a broker: no consumer is needed to apply records
    view = RosterView.__new__(RosterView)
    view.keyring = keyring
    view.entries = {}
    view.ignored = 0
    view.ignored_reasons = []
    return view


def _entry(**kw: object) -> RosterEntry:
    base: dict[str, object] = {
        "platform_id": "basecamp-alice",
        "exam_id": "y3-final",
        "candidate_id": "alice",
        "extra_minutes": {2: 15},
        "issued_ms": 1_000,
    }
    base.update(kw)
    return RosterEntry(**base)  # type: ignore[arg-type]


def test_round_trip(proctor_key: SigningKey, keyring: Keyring) -> None:
    entry = _entry()
    key, value, headers = sign_entry(entry, proctor_key)
    assert verify_record(key, value, headers, keyring) == entry
    assert RosterEntry.from_bytes(value).extra_minutes == {2: 15}


def test_forged_and_foreign_records_are_refused(
    proctor_key: SigningKey, submission_key: SigningKey, keyring: Keyring
) -> None:
    key, value, headers = sign_entry(_entry(), proctor_key)
    assert verify_record(key, value, [], keyring) == "unsigned"
    tampered = value.replace(b'"revoked":false', b'"revoked":true')
    assert "does not match" in str(verify_record(key, tampered, headers, keyring))
    assert "does not match" in str(verify_record(b"basecamp-bob", value, headers, keyring))
    _, _, by_submission = sign_entry(_entry(), submission_key)
    assert "not proctor" in str(verify_record(key, value, by_submission, keyring))
    stranger = generate("proctor", "stranger")
    _, _, by_stranger = sign_entry(_entry(), stranger)
    assert "not in the keyring" in str(verify_record(key, value, by_stranger, keyring))
    assert "tombstone" in str(verify_record(key, None, headers, keyring))
    bad = [(n, v if n != SIGNATURE_HEADER else b"x" * 64) for n, v in headers]
    assert "does not match" in str(verify_record(key, value, bad, keyring))
    # a correctly signed record whose key and body disagree
    other = _entry(platform_id="basecamp-bob")
    _, ovalue, oheaders = sign_entry(other, proctor_key)
    from services.trust.roster import signed_message

    resigned = [(n, v) for n, v in oheaders]
    resigned[1] = (SIGNATURE_HEADER, proctor_key.sign(signed_message(key, ovalue)))
    assert "names 'basecamp-bob'" in str(verify_record(key, ovalue, resigned, keyring))
    junk = json.dumps({"platform_id": "basecamp-alice"}).encode()
    sig = [
        (oheaders[0][0], oheaders[0][1]),
        (SIGNATURE_HEADER, proctor_key.sign(signed_message(key, junk))),
    ]
    assert "not a roster entry" in str(verify_record(key, junk, sig, keyring))


def test_view_ignores_forged_and_older_records(proctor_key: SigningKey, keyring: Keyring) -> None:
    view = _view(keyring)
    first = _entry()
    view._apply(*sign_entry(first, proctor_key)[:2], sign_entry(first, proctor_key)[2], 0)
    assert view.get("basecamp-alice") == first
    # forged: someone writes an unsigned record that would move the candidate's exam
    forged = _entry(exam_id="other")
    view._apply(b"basecamp-alice", forged.to_bytes(), [], 1)
    assert view.get("basecamp-alice") == first and view.ignored == 1
    revoked = first.revoke(now_ms=2_000)
    assert (revoked.generation, revoked.revoked) == (2, True)
    k, v, h = sign_entry(revoked, proctor_key)
    view._apply(k, v, h, 2)
    assert view.get("basecamp-alice") == revoked
    # re-producing the old, validly signed generation-1 record cannot un-revoke it
    k, v, h = sign_entry(first, proctor_key)
    view._apply(k, v, h, 3)
    assert view.get("basecamp-alice") == revoked and view.ignored == 2
    assert "older than the entry held" in view.ignored_reasons[-1]
    back = revoked.reinstate(now_ms=3_000)
    k, v, h = sign_entry(back, proctor_key)
    view._apply(k, v, h, 4)
    assert view.get("basecamp-alice") == back and back.generation == 2 and not back.revoked


def test_bad_generation_is_not_an_entry() -> None:
    with pytest.raises(ValueError, match="generation"):
        RosterEntry.from_bytes(_entry(generation=0).to_bytes())
