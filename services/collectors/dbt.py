"""dbt.run: one event per dbt invocation, from run_results.json plus manifest.json.

``path`` is a dbt target directory (``run_results.json`` in it) or a directory whose
subdirectories each hold one invocation's artifacts (e.g. archived per run). Each
invocation is published once, keyed by ``metadata.invocation_id``, at
``metadata.generated_at``. The manifest gives what run_results lacks: resource type,
``depends_on.nodes`` and materialization. It must be the same invocation's (dbt writes it
at parse, with the run's ``invocation_id``): run_results whose manifest is missing or
another invocation's waits for it while fresh, as a copy made file by file would else be
published without its tests' dependencies, once and for good. A file being written (not
valid JSON yet and changed in the last seconds) is left for the next poll. A dbt
project's target dir that does not exist yet (dbt makes it only once the project parses)
is no invocation and no error: a project that never compiles leaves its criteria
expired, not unknown. Artifacts that stay unreadable (invalid JSON once settled, no
invocation id, a bad timestamp) are a dead letter on ``grading.dlq`` with the reason and
the file's bytes, once per version of the file; the other invocations go on.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from pydantic import Field

from services.collectors.http import SourceError
from services.collectors.polling import Collector, PollResult, Position, now_ms
from services.collectors.runner import common_options, run_one, split_common
from services.collectors.settings import SourceSettings, parse_model
from services.contract.dlq import DeadLetter
from services.core.events import Event, rfc3339_to_ms

log = logging.getLogger("proctor.collectors.dbt")

COMMANDS = frozenset({"run", "test", "build", "seed", "snapshot"})
RESOURCE_TYPES = frozenset({"model", "test", "seed", "snapshot"})
STATUSES = frozenset({"success", "error", "pass", "fail", "warn", "skipped"})
#: dbt statuses outside the contract's set, mapped onto it
STATUS_MAP = {"runtime error": "error", "partial success": "error", "no-op": "skipped"}
SETTLE_S = 10.0
KEEP_INVOCATIONS = 500
#: bytes of a refused run_results.json kept in its dead letter
DLQ_MAX_RAW = 1024 * 1024


class Settings(SourceSettings):
    path: Path = Field(description="dbt target dir, or a dir of per-invocation artifact dirs")


def _relation(name: Any) -> str | None:
    return str(name).replace('"', "").replace("`", "") if name else None


def node_result(result: Mapping[str, Any], manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """One node's result in the contract's shape; None for nodes outside it (unit tests...)."""
    uid = str(result.get("unique_id", ""))
    node = manifest.get("nodes", {}).get(uid, {})
    rtype = str(node.get("resource_type") or uid.split(".", 1)[0])
    if rtype not in RESOURCE_TYPES:
        return None
    status = str(result.get("status", "")).lower()
    status = STATUS_MAP.get(status, status)
    if status not in STATUSES:
        status = "error"
    failures = result.get("failures")
    materialized = node.get("config", {}).get("materialized")
    return {
        "unique_id": uid,
        "resource_type": rtype,
        "status": status,
        "failures": int(failures) if isinstance(failures, int) else None,
        "depends_on": [str(n) for n in node.get("depends_on", {}).get("nodes", [])],
        "materialization": None
        if rtype == "test"
        else (str(materialized) if materialized else None),
        "relation_name": _relation(result.get("relation_name") or node.get("relation_name")),
        "execution_time_s": float(result.get("execution_time") or 0.0),
        "message": None if result.get("message") is None else str(result.get("message")),
    }


def run_event_data(
    run: Mapping[str, Any], manifest: Mapping[str, Any]
) -> tuple[str, int, str, dict[str, Any]]:
    """(invocation id, event time, command, fields) of one invocation."""
    meta = run.get("metadata", {})
    invocation = str(meta.get("invocation_id") or "")
    if not invocation:
        raise SourceError("run_results.json has no metadata.invocation_id")
    command = str(run.get("args", {}).get("which", ""))
    results = [r for r in (node_result(x, manifest) for x in run.get("results", [])) if r]
    ts = rfc3339_to_ms(str(meta.get("generated_at")))
    return (
        invocation,
        ts,
        command,
        {"invocation_id": invocation, "command": command, "results": results},
    )


class DbtCollector(Collector):
    name = "dbt"

    def __init__(self, settings: Settings, platform_id: str) -> None:
        super().__init__(platform_id)
        self.settings = settings

    @property
    def source(self) -> str:
        return f"dbt artifacts {self.settings.path}"

    def describe(self, position: Position) -> str:
        ids = position.get("invocations", [])
        return f"{len(ids)} invocations, last {ids[-1] if ids else '-'}"

    def artifact_dirs(self) -> list[Path]:
        root = self.settings.path
        if (root / "run_results.json").is_file():
            return [root]
        if not root.is_dir():
            if (root.parent / "dbt_project.yml").is_file() and not root.exists():
                # dbt makes its target dir only once a project parses: a project that
                # never compiled has run nothing, which is no blindness of the collector
                return []
            raise SourceError(f"{root} does not exist or is not a directory")
        found = [d for d in root.iterdir() if (d / "run_results.json").is_file()]
        return sorted(found, key=lambda d: (d / "run_results.json").stat().st_mtime_ns)

    def poll(self, position: Position) -> PollResult:
        done = list(position.get("invocations", []))
        seen = set(done)
        stamps: dict[str, str] = dict(position.get("files", {}))
        events: list[Event] = []
        lag = 0
        new_stamps: dict[str, str] = {}
        for folder in self.artifact_dirs():
            results = folder / "run_results.json"
            st = results.stat()
            stamp = f"{st.st_mtime_ns}:{st.st_size}"
            new_stamps[str(folder)] = stamp
            if stamps.get(str(folder)) == stamp:
                continue
            try:
                loaded = self._load(results, folder / "manifest.json", st.st_mtime)
                if loaded is None:
                    lag += 1
                    del new_stamps[str(folder)]  # read again next time
                    continue
                invocation, ts, command, data = run_event_data(*loaded)
            except (SourceError, ValueError, TypeError, AttributeError) as exc:
                # the candidate's dbt left artifacts that cannot be read: a dead letter for
                # this folder (once per version of the file), the others go on
                events.append(self._dead_letter(results, exc))
                continue
            if invocation in seen:
                continue
            seen.add(invocation)
            done.append(invocation)
            if command not in COMMANDS:
                continue  # dbt compile / docs / ls: no node results to grade
            events.append(self.signal("dbt.run", [invocation], ts, data))
        position_out = {"invocations": done[-KEEP_INVOCATIONS:], "files": new_stamps}
        return PollResult(tuple(events), position_out, lag)

    def _dead_letter(self, results: Path, exc: Exception) -> Event:
        raw = results.read_bytes()
        kept = raw[:DLQ_MAX_RAW]
        reason = f"{results}: {exc}"
        if len(raw) > len(kept):
            reason += f" (file of {len(raw)} bytes truncated to {len(kept)} in this dead letter)"
        log.warning("dbt artifacts refused: %s", reason)
        return DeadLetter(
            reason=reason,
            error_class="corrupt_bytes" if "not valid JSON" in str(exc) else "invalid_field",
            ts_ms=now_ms(),
            source=f"collector:{self.name}",
            raw_key=self.platform_id.encode(),
            raw_value=kept,
        ).to_event()

    def _load(
        self, results: Path, manifest: Path, mtime: float
    ) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
        try:
            run = json.loads(results.read_text(encoding="utf-8"))
            man = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else {}
        except ValueError as exc:
            if time.time() - mtime < SETTLE_S:
                return None  # dbt is still writing it
            raise SourceError(f"{results.parent}: dbt artifacts are not valid JSON: {exc}") from exc
        if not isinstance(run, dict) or not isinstance(man, dict):
            raise SourceError(f"{results.parent}: dbt artifacts are not JSON objects")
        if _invocation(man) != _invocation(run):
            if time.time() - mtime < SETTLE_S:
                return None  # its manifest is not there yet (artifacts copied one by one)
            log.warning(
                "%s: manifest.json is %s; tests and dependencies read without it",
                results.parent,
                "missing" if not man else f"of invocation {_invocation(man)}",
            )
        return run, man


def _invocation(doc: Mapping[str, Any]) -> str | None:
    meta = doc.get("metadata")
    return str(meta.get("invocation_id")) if isinstance(meta, Mapping) else None


def build(settings: Settings, platform_id: str) -> DbtCollector:
    return DbtCollector(settings, platform_id)


@click.command("dbt")
@click.option(
    "--path",
    type=click.Path(path_type=Path),
    required=True,
    help="dbt target dir, or a dir of per-invocation artifact dirs",
)
@common_options
def command(**kwargs: Any) -> None:
    """Publish dbt.run from run_results.json plus manifest.json after each invocation."""
    common, own = split_common(kwargs)
    settings = parse_model(Settings, {"interval_s": common["interval_s"], **own}, "flags")
    run_one(lambda platform: build(settings, platform), common)
