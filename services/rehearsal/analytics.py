"""The candidate's dbt in a rehearsal: the rollup model built for real with dbt-trino on the
stack's Trino, its OpenLineage events sent by openlineage-dbt to proctor's receiver, and
the upstream row the proctor breaks for the dbt test to catch.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

from services.collectors import openlineage
from services.platform.dbt import (
    BROKEN_ROW_TEST,
    SOURCE_TABLE,
    BuildResult,
    DbtProject,
    DbtVenv,
    LineageTarget,
    TrinoTarget,
    ensure_venv,
)
from services.rehearsal.kube import PushReceiver


def venv() -> DbtVenv:
    """dbt-core, dbt-trino and openlineage-dbt in their cached venv (built by pip once)."""
    return ensure_venv(progress=lambda _line: None)


def summary(result: BuildResult) -> str:
    """What a build did, from its own run_results.json: passes and failures by node."""
    try:
        doc = json.loads(result.run_results.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"dbt exit {result.returncode}, no run_results.json (see {result.log})"
    counts: dict[str, int] = {}
    failed = []
    for r in doc.get("results", []):
        status = str(r.get("status"))
        counts[status] = counts.get(status, 0) + 1
        if status in ("fail", "error"):
            failed.append(f"{str(r.get('unique_id', '')).split('.')[-1]} {status}")
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    tail = f"; {', '.join(failed)}" if failed else ""
    return f"dbt exit {result.returncode} in {result.seconds:.0f}s: {parts}{tail}"


@dataclass
class PlatformDbt:
    """One platform's dbt project, bound to a schema of its own on the stack's Trino."""

    project: DbtProject
    lineage: LineageTarget
    row_key: str = ""

    @classmethod
    def start(
        cls,
        venv: DbtVenv,
        workdir: Path,
        trino_url: str,
        receiver: PushReceiver,
        platform_id: str,
        with_test: bool = True,
    ) -> PlatformDbt:
        target = TrinoTarget.unique("rh_dbt", url=trino_url)
        project = DbtProject(workdir, venv, target)
        project.start()
        if not with_test:
            project.drop_test(BROKEN_ROW_TEST)
        lineage = LineageTarget(
            receiver.url(platform_id), receiver.secret(openlineage.NAME, platform_id)
        )
        return cls(project, lineage)

    @property
    def source_dataset(self) -> str:
        return f"{self.project.target.schema}.{SOURCE_TABLE}"

    def build(self) -> str:
        return summary(self.project.build(lineage=self.lineage))

    def break_row(self) -> str:
        self.row_key = self.project.break_row()
        return self.row_key

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.project.repair_row()
        self.project.stop()
