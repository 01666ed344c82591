"""Keys: generated, written 0600, loaded only from a private file, keyrings parsed strictly."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from services.errors import ConfigError
from services.trust.keys import (
    Keyring,
    generate,
    load_signing_key,
    signing_key_from_env,
    write_private_key,
)

pytestmark = pytest.mark.unit


def test_generate_write_load_round_trip(tmp_path: Path) -> None:
    key = generate("proctor")
    assert key.key_id.startswith("proctor-")
    path = write_private_key(key, tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_signing_key(
        {"PROCTOR_SIGNING_KEY": str(path), "PROCTOR_SIGNING_KEY_ID": key.key_id}
    )
    assert loaded.public_b64 == key.public_b64
    assert loaded.key_id == key.key_id
    ring = Keyring.parse(f"{key.key_id} proctor {key.public_b64}\n")
    assert ring.get(key.key_id) is not None
    assert ring.get(key.key_id).verify(loaded.sign(b"m"), b"m")  # type: ignore[union-attr]


def test_write_never_overwrites(tmp_path: Path) -> None:
    key = generate("submission", "sub-1")
    write_private_key(key, tmp_path)
    with pytest.raises(ConfigError, match="exists already"):
        write_private_key(key, tmp_path)


def test_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    path = write_private_key(generate("proctor", "p1"), tmp_path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_signing_key({"PROCTOR_SIGNING_KEY": str(path)})


def test_missing_and_bad_settings_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PROCTOR_SIGNING_KEY"):
        load_signing_key({})
    assert signing_key_from_env({}) is None
    with pytest.raises(ConfigError, match="not a file"):
        load_signing_key({"PROCTOR_SIGNING_KEY": str(tmp_path / "none.pem")})
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    junk.chmod(0o600)
    with pytest.raises(ConfigError, match="not an unencrypted PEM"):
        load_signing_key({"PROCTOR_SIGNING_KEY": str(junk)})
    with pytest.raises(ConfigError, match="PROCTOR_TRUSTED_KEYS"):
        Keyring.from_env({})


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("only two", "expected 'key_id role"),
        ("k1 admin AAAA", "line 1"),
        ("k1 proctor not-base64!", "not a base64 Ed25519"),
        ("k1 proctor AAAA", "not a base64 Ed25519"),
    ],
)
def test_bad_keyring_lines(line: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        Keyring.parse(line)


def test_keyring_file_comments_duplicates_and_empty(tmp_path: Path) -> None:
    key = generate("proctor", "p1")
    f = tmp_path / "trusted"
    f.write_text(f"# the proctor\n{key.key_id} proctor {key.public_b64}  # prod\n")
    assert len(Keyring.from_file(f)) == 1
    f.write_text(f"p1 proctor {key.public_b64}\np1 submission {key.public_b64}\n")
    with pytest.raises(ConfigError, match="twice"):
        Keyring.from_file(f)
    f.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="no keys"):
        Keyring.from_file(f)
