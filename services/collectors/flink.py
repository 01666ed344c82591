"""flink.job and flink.checkpoint from the Flink REST API.

``/jobs/overview`` lists the jobs; a job whose state or last modification changed is
published again with its plan (``/jobs/{id}/plan``: node descriptions) and checkpoint
configuration (``/jobs/{id}/checkpoints/config``; 404 there means checkpointing is off).
``/jobs/{id}/checkpoints`` gives the recent history (``web.checkpoints.history``, 10 by
default) and the latest completed and failed ones; each finished checkpoint is published
once. Checkpoints that left the history between two polls are counted as lag: poll more
often than ``history x interval`` to see them all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import click
from pydantic import Field

from services.collectors.http import JsonClient, expect
from services.collectors.polling import Collector, PollResult, Position
from services.collectors.runner import common_options, run_one, split_common
from services.collectors.settings import SourceSettings, parse_model
from services.core.events import ms_to_rfc3339

TERMINAL = frozenset({"FINISHED", "CANCELED", "FAILED"})
FINAL_CHECKPOINT = frozenset({"COMPLETED", "FAILED"})
MODES = frozenset({"exactly_once", "at_least_once"})
#: checkpoint ids kept per job in the position (the history is shorter than this)
KEEP_IDS = 64


class Settings(SourceSettings):
    url: str = Field(description="Flink REST address, e.g. http://flink-jobmanager:8081")
    job_name_pattern: str | None = Field(
        default=None, description="only jobs whose name contains this"
    )


def job_data(
    overview: Mapping[str, Any], plan: Mapping[str, Any], config: Mapping[str, Any] | None
) -> dict[str, Any]:
    nodes = plan.get("plan", {}).get("nodes", [])
    mode = str(config.get("mode", "")).lower() if config else ""
    interval = config.get("interval") if config else None
    return {
        "job_id": str(overview["jid"]),
        "job_name": str(overview.get("name", "")),
        "state": str(overview.get("state", "")),
        "operators": [str(n.get("description", "")) for n in nodes if isinstance(n, Mapping)],
        "checkpointing_mode": mode if mode in MODES else None,
        "checkpoint_interval_ms": int(interval)
        if isinstance(interval, int) and interval > 0
        else None,
    }


def checkpoint_data(job_id: str, cp: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    """(event time, fields) of one finished checkpoint of the history."""
    trigger = int(cp.get("trigger_timestamp") or 0)
    status = str(cp["status"])
    done = cp.get("latest_ack_timestamp") if status == "COMPLETED" else cp.get("failure_timestamp")
    size = cp.get("checkpointed_size", cp.get("state_size", 0))
    return int(done or trigger), {
        "job_id": job_id,
        "checkpoint_id": int(cp["id"]),
        "status": status,
        "is_savepoint": bool(cp.get("is_savepoint", False)),
        "trigger_ts": ms_to_rfc3339(trigger),
        "duration_ms": int(cp.get("end_to_end_duration") or 0),
        "state_size": int(size or 0),
    }


def finished_checkpoints(stats: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """History plus the latest completed/failed/savepoint entries, finished ones only, by id."""
    found: dict[int, Mapping[str, Any]] = {}
    latest = stats.get("latest") or {}
    candidates: Iterable[Any] = [*(stats.get("history") or []), *latest.values()]
    for cp in candidates:
        if isinstance(cp, Mapping) and cp.get("status") in FINAL_CHECKPOINT and "id" in cp:
            found.setdefault(int(cp["id"]), cp)  # history entries first: they are the fuller
    return [found[i] for i in sorted(found)]


class FlinkCollector(Collector):
    name = "flink"

    def __init__(self, settings: Settings, platform_id: str) -> None:
        super().__init__(platform_id)
        self.settings = settings
        self.http = JsonClient(settings.url)

    @property
    def source(self) -> str:
        return f"flink {self.settings.url}"

    def describe(self, position: Position) -> str:
        return ", ".join(
            f"{jid[:8]}:{v.get('state', '?')}@cp{max(v.get('checkpoints') or [0])}"
            for jid, v in sorted(position.items())
        )[:500]

    def poll(self, position: Position) -> PollResult:
        overview = expect(self.http.get("/jobs/overview"), dict, "GET /jobs/overview")
        events = []
        new: dict[str, Any] = {}
        lag = 0
        for job in overview.get("jobs", []):
            name = str(job.get("name", ""))
            if self.settings.job_name_pattern and self.settings.job_name_pattern not in name:
                continue
            jid = str(job["jid"])
            old = position.get(jid, {})
            stamp = f"{job.get('state')}@{job.get('last-modification')}"
            state: dict[str, Any] = {"state": job.get("state"), "stamp": stamp}
            changed = old.get("stamp") != stamp
            if changed:
                events.append(self._job(job))
            cps = list(old.get("checkpoints", []))
            if changed or job.get("state") not in TERMINAL:
                found, cps, missed = self._checkpoints(jid, cps)
                events.extend(found)
                lag += missed
            state["checkpoints"] = cps
            new[jid] = state
        return PollResult(tuple(events), new, lag)

    def _job(self, job: Mapping[str, Any]) -> Any:
        jid = str(job["jid"])
        plan = expect(self.http.get(f"/jobs/{jid}/plan"), dict, f"GET /jobs/{jid}/plan")
        status, config = self.http.request("GET", f"/jobs/{jid}/checkpoints/config", allow=(404,))
        data = job_data(job, plan, config if status != 404 else None)
        digest = hashlib.sha256(repr(sorted(data.items())).encode()).hexdigest()[:16]
        ts = int(job.get("last-modification") or job.get("start-time") or 0)
        return self.signal("flink.job", [jid, job.get("state"), ts, digest], ts, data)

    def _checkpoints(self, jid: str, published: list[int]) -> tuple[list[Any], list[int], int]:
        status, stats = self.http.request("GET", f"/jobs/{jid}/checkpoints", allow=(404,))
        if status == 404 or not isinstance(stats, Mapping):
            return [], published, 0
        done = set(published)
        floor = max(done) - KEEP_IDS if done else -1
        events = []
        finished = finished_checkpoints(stats)
        for cp in finished:
            cid = int(cp["id"])
            if cid in done or cid <= floor:
                continue
            ts, data = checkpoint_data(jid, cp)
            events.append(self.signal("flink.checkpoint", [jid, cid, data["status"]], ts, data))
            done.add(cid)
        missed = 0
        if published and finished:
            # ids between the last one seen and the oldest in the history were never seen
            missed = max(0, min(int(c["id"]) for c in finished) - max(published) - 1)
        keep = sorted(done)[-KEEP_IDS:]
        return events, keep, missed

    def close(self) -> None:
        self.http.close()


def build(settings: Settings, platform_id: str) -> FlinkCollector:
    return FlinkCollector(settings, platform_id)


@click.command("flink")
@click.option("--url", required=True, help="Flink REST address")
@click.option("--job-name-pattern", default=None, help="only jobs whose name contains this")
@common_options
def command(**kwargs: Any) -> None:
    """Publish flink.job and flink.checkpoint from the Flink REST API."""
    common, own = split_common(kwargs)
    settings = parse_model(Settings, {"interval_s": common["interval_s"], **own}, "flags")
    run_one(lambda platform: build(settings, platform), common)
