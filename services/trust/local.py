"""Keys for a local stack: generated once into a private directory, for demos and tests.

A real deployment generates its keys with ``proctor keys generate`` and keeps them in its
secret store; on a laptop ``proctor demo`` and ``scripts/demo.sh`` need the same
variables without ceremony, so they come from ``.stack/keys`` (directory 0700, files 0600),
created on first use.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from services.trust.keys import Keyring, generate, load_private_key, write_private_key

PROCTOR_ID = "proctor-local"
SUBMISSION_ID = "submission-local"


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def ensure_local_trust(directory: Path) -> dict[str, str]:
    """The trust variables of a local stack, creating keys and secret in ``directory`` if
    missing: PROCTOR_SIGNING_KEY(_ID), PROCTOR_TRUSTED_KEYS, PROCTOR_ROSTER_SECRET."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    keys = {}
    for key_id, role in ((PROCTOR_ID, "proctor"), (SUBMISSION_ID, "submission")):
        path = directory / f"{key_id}.pem"
        if path.exists():
            keys[role] = load_private_key(path, key_id)
        else:
            keys[role] = generate(role, key_id)  # type: ignore[arg-type]
            write_private_key(keys[role], directory)
    trusted = directory / "trusted-keys"
    ring = Keyring.of((keys["proctor"], "proctor"), (keys["submission"], "submission"))
    text = "".join(f"{k.line()}\n" for k in ring)
    if not trusted.exists() or trusted.read_text(encoding="utf-8") != text:
        trusted.write_text(text, encoding="utf-8")
    secret_path = directory / "roster-secret"
    if not secret_path.exists():
        _write_private(secret_path, secrets.token_hex(32))
    return {
        "PROCTOR_SIGNING_KEY": str(directory / f"{PROCTOR_ID}.pem"),
        "PROCTOR_SIGNING_KEY_ID": PROCTOR_ID,
        "PROCTOR_TRUSTED_KEYS": str(trusted),
        "PROCTOR_ROSTER_SECRET": secret_path.read_text(encoding="utf-8").strip(),
    }
