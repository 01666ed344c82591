"""flink.job and flink.checkpoint from the Flink REST API.

``/jobs/overview`` lists the jobs; a job whose state or last modification changed is
published again with its plan (``/jobs/{id}/plan``: node descriptions) and checkpoint
configuration (``/jobs/{id}/checkpoints/config``; checkpointing is off when that answers
404, or 200 with an interval of Long.MAX_VALUE).
``/jobs/{id}/checkpoints`` gives the recent history (``web.checkpoints.history``, 10 by
default) and the latest completed and failed ones; each finished checkpoint is published
once. Checkpoints that left the history between two polls are counted as lag: poll more
often than ``history x interval`` to see them all.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import click
from pydantic import Field

from services.collectors.http import JsonClient, SourceError, expect
from services.collectors.polling import Collector, PollResult, Position
from services.collectors.runner import common_options, run_one, split_common
from services.collectors.settings import SourceSettings, parse_model
from services.core.events import ms_to_rfc3339

log = logging.getLogger("proctor.collectors.flink")

TERMINAL = frozenset({"FINISHED", "CANCELED", "FAILED"})
FINAL_CHECKPOINT = frozenset({"COMPLETED", "FAILED"})
MODES = frozenset({"exactly_once", "at_least_once"})
#: ``interval`` of a job whose checkpointing is off (Java's Long.MAX_VALUE)
CHECKPOINTING_OFF = 2**63 - 1
#: checkpoint ids kept per job in the position (the history is shorter than this)
KEEP_IDS = 64


class Settings(SourceSettings):
    url: str = Field(description="Flink REST address, e.g. http://flink-jobmanager:8081")
    job_name_pattern: str | None = Field(
        default=None, description="only jobs whose name contains this"
    )


def checkpointing(config: Mapping[str, Any] | None) -> tuple[str | None, int | None]:
    """(mode, interval ms) of ``/checkpoints/config``, or (None, None) when checkpointing is off.

    Off is answered two ways: 404 (a batch job, no checkpoint coordinator), or 200 with
    ``interval`` = Long.MAX_VALUE (a streaming job without ``enableCheckpointing``: its
    coordinator exists only for savepoints, and the mode it reports is the default, not
    a choice).
    """
    if not config:
        return None, None
    raw = config.get("interval")
    interval = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    if interval is not None and interval >= CHECKPOINTING_OFF:
        return None, None
    mode = str(config.get("mode", "")).lower()
    return (mode if mode in MODES else None), (interval if interval and interval > 0 else None)


def job_data(
    overview: Mapping[str, Any], plan: Mapping[str, Any], config: Mapping[str, Any] | None
) -> dict[str, Any]:
    nodes = plan.get("plan", {}).get("nodes", [])
    mode, interval = checkpointing(config)
    return {
        "job_id": str(overview["jid"]),
        "job_name": str(overview.get("name", "")),
        "state": str(overview.get("state", "")),
        "operators": [str(n.get("description", "")) for n in nodes if isinstance(n, Mapping)],
        "checkpointing_mode": mode,
        "checkpoint_interval_ms": interval,
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
        failures: list[Exception] = []
        tried = 0
        for job in overview.get("jobs", []):
            if not isinstance(job, Mapping):
                failures.append(SourceError(f"GET /jobs/overview: job entry {job!r} is no object"))
                continue
            name = str(job.get("name", ""))
            if self.settings.job_name_pattern and self.settings.job_name_pattern not in name:
                continue
            tried += 1
            jid = str(job.get("jid", ""))
            try:
                found, state, missed = self._one_job(job, position.get(jid, {}))
            except (SourceError, KeyError, TypeError, ValueError) as exc:
                # One job whose answers cannot be read must not hide the others: keep its
                # old position (it is read again next poll) and report it.
                log.warning("flink job %s skipped this poll: %s", jid or "?", exc)
                failures.append(exc)
                if jid in position:
                    new[jid] = position[jid]
                continue
            events.extend(found)
            lag += missed
            new[jid] = state
        if failures and len(failures) >= tried:
            raise SourceError(f"no Flink job could be read: {failures[0]}") from failures[0]
        return PollResult(tuple(events), new, lag + len(failures))

    def _one_job(
        self, job: Mapping[str, Any], old: Mapping[str, Any]
    ) -> tuple[list[Any], dict[str, Any], int]:
        """The new signals of one job, its position entry and the checkpoints it missed."""
        jid = str(job["jid"])
        stamp = f"{job.get('state')}@{job.get('last-modification')}"
        state: dict[str, Any] = {"state": job.get("state"), "stamp": stamp}
        changed = old.get("stamp") != stamp
        events = [self._job(job)] if changed else []
        cps = list(old.get("checkpoints", []))
        missed = 0
        if changed or job.get("state") not in TERMINAL:
            found, cps, missed = self._checkpoints(jid, cps)
            events.extend(found)
        state["checkpoints"] = cps
        return events, state, missed

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
