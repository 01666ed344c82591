"""Write the scenario library: one JSON Lines recording per scenario, and an index.

    .venv/bin/python tests/scenarios/build.py

The recordings are built by services/offline/scenarios.py (deterministic);
tests/unit/offline/test_offline_scenarios.py checks that the committed files equal a
fresh build and that grading each one gives what the scenario expects.
"""

from __future__ import annotations

from pathlib import Path

from services.offline.scenarios import SCENARIOS, render_jsonl

HERE = Path(__file__).resolve().parent


def index() -> str:
    lines = [
        "# Scenario library",
        "",
        "Recorded exams in the contract's JSON Lines form, built by `services/offline/scenarios.py`",
        "(regenerate with `.venv/bin/python tests/scenarios/build.py`). Each doubles as demo data:",
        "`proctor replay tests/scenarios/<name>.jsonl`. `rubrics/` holds a shadow rubric version 2",
        "for `proctor regrade`.",
        "",
        "| recording | what it shows |",
        "| --- | --- |",
    ]
    for name, build in SCENARIOS.items():
        lines.append(f"| {name}.jsonl | {build().about} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    for name, build in SCENARIOS.items():
        (HERE / f"{name}.jsonl").write_text(render_jsonl(build().events), encoding="utf-8")
    (HERE / "README.md").write_text(index(), encoding="utf-8")


if __name__ == "__main__":
    main()
