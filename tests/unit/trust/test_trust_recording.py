"""Signed recordings: `proctor keys sign-recording` then `proctor replay --verify`; a
tampered or unsigned control event stops the replay before it grades."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.offline.cli import replay
from services.trust.cli import keys
from services.trust.keys import Keyring, SigningKey, write_private_key
from services.trust.recording import sign_recording, verify_recording

pytestmark = pytest.mark.unit
SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "clean_pass.jsonl"


def test_sign_then_verify(tmp_path: Path, proctor_key: SigningKey, keyring: Keyring) -> None:
    signed = tmp_path / "signed.jsonl"
    count = sign_recording(SCENARIO, signed, proctor_key)
    assert count > 5
    check = verify_recording(signed, keyring)
    assert check.ok and check.verified == count
    assert not verify_recording(SCENARIO, keyring).ok  # unsigned control events

    lines = signed.read_text().splitlines()
    index = next(i for i, t in enumerate(lines) if '"diagnosis.submitted"' in t)
    obj = json.loads(lines[index])
    obj["kind"] = "stale_cache" if obj["kind"] != "stale_cache" else "lost_messages"
    lines[index] = json.dumps(obj)
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n")
    check = verify_recording(tampered, keyring)
    assert len(check.refused) == 1 and f"line {index + 1}" in check.refused[0]


def test_cli_sign_and_replay_verify(
    tmp_path: Path, proctor_key: SigningKey, keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    pem = write_private_key(proctor_key, tmp_path / "keys")
    ring = tmp_path / "trusted"
    ring.write_text("".join(f"{k.line()}\n" for k in keyring))
    monkeypatch.setenv("PROCTOR_TRUSTED_KEYS", str(ring))
    signed = tmp_path / "signed.jsonl"
    result = CliRunner().invoke(
        keys,
        [
            "sign-recording",
            str(SCENARIO),
            str(signed),
            "--signing-key",
            str(pem),
            "--key-id",
            proctor_key.key_id,
        ],
    )
    assert result.exit_code == 0, result.output
    ok = CliRunner().invoke(replay, [str(signed), "--verify", "--json"])
    assert ok.exit_code == 0, ok.output
    assert "verified" in ok.stderr and json.loads(ok.stdout)["exams"]
    refused = CliRunner().invoke(replay, [str(SCENARIO), "--verify", "--json"])
    assert refused.exit_code == 2 and "nothing graded" in refused.stderr
    assert refused.stdout == ""
