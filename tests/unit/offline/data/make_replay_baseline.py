"""Regenerate ``replay_baseline.json``: the grades today's replay gives every recording.

    PYTHONPATH=. .venv/bin/python tests/unit/offline/data/make_replay_baseline.py

The file was first written by this script at commit 969aa65, before replay validated
lines, by running ``proctor replay FILE --json`` (plus ``--skip-invalid``, which that
version had) on every tests/scenarios/*.jsonl and schemas/examples.jsonl; the test
``test_replay_baseline.py`` asserts that replay still gives exactly these grades (and
tests/adversarial/test_replay.py uses clean_pass's as the unattacked grades). Only
regenerate it for a change that is meant to move grades, and say so in the commit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
OUT = Path(__file__).with_name("replay_baseline.json")


def recordings() -> list[Path]:
    return [
        *sorted((ROOT / "tests" / "scenarios").glob("*.jsonl")),
        ROOT / "schemas" / "examples.jsonl",
    ]


def main() -> None:
    out: dict[str, object] = {}
    for path in recordings():
        proc = subprocess.run(
            [sys.executable, "-m", "services.cli", "replay", str(path), "--json", "--skip-invalid"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        # the grades only (replay's "refused" report came later, with the validation)
        out[str(path.relative_to(ROOT))] = {"exams": json.loads(proc.stdout)["exams"]}
        if proc.stderr.strip():
            print(f"{path.name}: {proc.stderr.strip()}", file=sys.stderr)
    OUT.write_text(json.dumps(out, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"wrote {OUT} ({len(out)} recordings)")


if __name__ == "__main__":
    main()
