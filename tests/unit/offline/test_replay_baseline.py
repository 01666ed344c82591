"""Every recording made before replay validated lines replays to the same grades.

``data/replay_baseline.json`` holds what ``proctor replay FILE --json`` printed for each
recording before the change (see ``data/make_replay_baseline.py`` for how it was made).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.judge.default import default_judge
from services.offline.replay import replay_file, results_json
from services.rubrics import resolver

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
BASELINE = json.loads((Path(__file__).parent / "data" / "replay_baseline.json").read_text())
RECORDINGS = [
    *sorted((ROOT / "tests" / "scenarios").glob("*.jsonl")),
    ROOT / "schemas" / "examples.jsonl",
]


def test_the_baseline_covers_every_recording() -> None:
    assert sorted(BASELINE) == sorted(str(p.relative_to(ROOT)) for p in RECORDINGS)


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_recording_replays_to_its_recorded_grades(path: Path) -> None:
    replayed = replay_file(path, resolver(), default_judge())
    # json round trip: the baseline is the CLI's JSON text
    got = json.loads(json.dumps(results_json(replayed.results)))
    # review notes (why a person must look) came later and are not grades
    for exam in got["exams"]:
        exam.pop("review", None)
    assert got == BASELINE[str(path.relative_to(ROOT))]
    if path.parent.name == "scenarios":
        assert replayed.refused == (), [str(b) for b in replayed.refused]
