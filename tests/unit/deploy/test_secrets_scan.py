"""The secrets scan's configuration (.gitleaks.toml): its exceptions are narrow.

Each case writes one file into a scratch directory and scans it with gitleaks and the
repository's config: the two reasoned exceptions stay silent, anything else that looks
like a credential is found, including in tests/ and beside a dead-letter example. The
credentials are made at run time, so none sits in this repository. Needs the gitleaks
binary that scripts/check-manifests.sh installs; skips without it.
"""

from __future__ import annotations

import secrets
import shutil
import string
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]


def gitleaks() -> str:
    if shutil.which("go"):
        gopath = subprocess.run(
            ["go", "env", "GOPATH"], capture_output=True, text=True, check=False
        ).stdout.strip()
        candidate = Path(gopath) / "bin" / "gitleaks"
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("gitleaks")
    if found is None:
        pytest.skip("gitleaks is not installed; scripts/check-manifests.sh installs it")
    return found


def token(n: int) -> str:
    """Letters and digits in turn: random, yet never holding a word from gitleaks' stopword
    list (a token that happened to spell one, such as "node", was ignored by its generic
    rule). The letters never repeat and the digits cycle through all ten before any comes
    again, so the token's entropy stays above the generic rule's threshold (3.5 bits): a
    draw such as "G4l4l6S4e5s9C5e7Z5S6" fell under it and was rightly not reported."""
    rng = secrets.SystemRandom()
    letters = rng.sample(string.ascii_letters, (n + 1) // 2)
    digits: list[str] = []
    while len(digits) < n // 2:
        digits.extend(rng.sample(string.digits, len(string.digits)))
    return "".join(letters[i // 2] if i % 2 == 0 else digits[i // 2] for i in range(n))


def finds(tmp_path: Path, name: str, text: str, config: bool = True) -> bool:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    with_config = ["--config", str(REPO / ".gitleaks.toml")] if config else []
    proc = subprocess.run(
        [
            gitleaks(),
            "dir",
            *with_config,
            "--no-banner",
            "--log-level",
            "error",
            "--exit-code",
            "7",
            name,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode in (0, 7), proc.stderr
    return proc.returncode == 7


CASES = {
    "a token in a settings file": ("settings.env", lambda: f"GITHUB_TOKEN=ghp_{token(36)}\n", True),
    "a password in a test": ("tests/test_x.py", lambda: f'connect(password="{token(20)}")\n', True),
    "an api key in a test": ("tests/test_y.py", lambda: f'api_key = "{token(24)}"\n', True),
    "a key beside a dead letter": (
        "schemas/examples.jsonl",
        lambda: (
            '{"type": "grading.dead_letter", "raw_key": "YmFzZWNhbXA="}\n'  # gitleaks:allow
            f'{{"type": "tool.used", "api_key": "{token(24)}"}}\n'
        ),
        True,
    ),
    "a wrong secret named as such": (
        "tests/test_z.py",
        lambda: 'sign(body, secret="wrong-secret-0123456789")\n',
        False,
    ),
    "a dead letter's base64 bytes": (
        "schemas/examples.jsonl",
        lambda: (
            '{"type": "grading.dead_letter", "platform_id": "p", "raw_key": "YmFzZWNhbXAtYWxpY2U=", '
            '"raw_value": "eyJqb2JfaWQiOiAxfQ=="}\n'
        ),
        False,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_scan_finds_credentials_but_not_the_named_exceptions(tmp_path: Path, case: str) -> None:
    name, make, expected = CASES[case]
    text = make()
    assert finds(tmp_path, name, text) is expected
    if not expected:  # an exception, so gitleaks' own rules must flag it
        assert finds(tmp_path, name, text, config=False)
