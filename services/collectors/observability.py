"""pillar.seen: metrics, logs and traces of the declared services, from their query APIs.

Per service the settings give PromQL, LogQL and (optionally) TraceQL selectors:

- metrics: Prometheus ``/api/v1/query`` (series found -> one pillar.seen per selector)
  and ``/api/v1/query_exemplars`` (a trace id on an exemplar -> pillar.seen with it);
- logs: Loki ``/loki/api/v1/query_range`` since the last poll (lines found -> one
  pillar.seen per selector; trace ids in the lines or stream labels -> one each);
- traces: Tempo ``/api/search`` for the TraceQL selector, and ``/api/traces/{id}`` for
  every trace id found in metrics or logs, so one event can be followed through all three.

Each (pillar, service, selector, trace id) is published once; trace ids that Tempo has
not ingested yet are asked again for ``lookback_s``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import click
from pydantic import BaseModel, ConfigDict, Field

from services.collectors.http import NOT_FOUND, JsonClient, SourceError, expect
from services.collectors.polling import Collector, PollResult, Position, now_ms
from services.collectors.runner import common_options, run_one, split_common
from services.collectors.settings import SourceSettings, parse_model

TRACE_LABELS = ("trace_id", "traceID", "traceId", "trace-id")
KEEP_SEEN = 5000


class ServiceQueries(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str
    metrics: tuple[str, ...] = ()
    logs: tuple[str, ...] = ()
    traces: tuple[str, ...] = ()


class Settings(SourceSettings):
    prometheus_url: str | None = None
    loki_url: str | None = None
    tempo_url: str | None = None
    services: tuple[ServiceQueries, ...] = Field(min_length=1)
    lookback_s: float = Field(default=900.0, gt=0, description="how far back to look")
    trace_id_pattern: str = Field(
        default=r"(?i)trace[_-]?id[\"'=: ]+([0-9a-f]{16,32})",
        description="regex whose first group is a trace id in a log line",
    )
    max_traces_per_poll: int = Field(default=20, gt=0)


def prom_result(body: Any, where: str) -> list[Mapping[str, Any]]:
    body = expect(body, dict, where)
    if body.get("status") != "success":
        raise SourceError(f"{where}: {body.get('errorType')}: {body.get('error')}")
    result = body.get("data", {}).get("result", [])
    return [r for r in result if isinstance(r, Mapping)]


def exemplar_traces(body: Any, where: str) -> list[tuple[str, int]]:
    """(trace id, ms) of every exemplar with a trace id label (``data`` is a list of series)."""
    answer = expect(body, dict, where)
    if answer.get("status") != "success":
        raise SourceError(f"{where}: {answer.get('errorType')}: {answer.get('error')}")
    out = []
    for series in answer.get("data") or []:
        for ex in series.get("exemplars", []) or []:
            labels = ex.get("labels", {}) or {}
            tid = next((labels[k] for k in TRACE_LABELS if labels.get(k)), None)
            if tid:
                out.append((str(tid), int(float(ex.get("timestamp", 0)) * 1000)))
    return out


def loki_lines(body: Any, where: str) -> list[tuple[int, str, Mapping[str, Any]]]:
    """(ms, line, stream labels) of a Loki streams answer."""
    data = expect(body, dict, where)
    if data.get("status") != "success":
        raise SourceError(f"{where}: Loki answered status {data.get('status')!r}")
    out = []
    for stream in data.get("data", {}).get("result", []):
        labels = stream.get("stream", {}) or {}
        for value in stream.get("values", []):
            out.append((int(value[0]) // 1_000_000, str(value[1]), labels))
    return out


def trace_spans(body: Any) -> tuple[int, set[str], int | None]:
    """(span count, service names, first span start ms) of a Tempo trace (OTLP JSON)."""
    data = expect(body, dict, "tempo trace")
    spans = 0
    services: set[str] = set()
    start: int | None = None
    for rs in data.get("batches", data.get("resourceSpans", [])) or []:
        for attr in rs.get("resource", {}).get("attributes", []):
            if attr.get("key") == "service.name":
                services.add(str(attr.get("value", {}).get("stringValue", "")))
        for scope in rs.get("scopeSpans", rs.get("instrumentationLibrarySpans", [])) or []:
            for span in scope.get("spans", []):
                spans += 1
                t = int(span.get("startTimeUnixNano", 0)) // 1_000_000
                start = t if start is None else min(start, t)
    return spans, services, start


class PillarCollector(Collector):
    name = "observability"
    key = "pillars"

    def __init__(self, settings: Settings, platform_id: str) -> None:
        super().__init__(platform_id)
        self.settings = settings
        self.trace_re = re.compile(settings.trace_id_pattern)
        self.prom = JsonClient(settings.prometheus_url) if settings.prometheus_url else None
        self.loki = JsonClient(settings.loki_url) if settings.loki_url else None
        self.tempo = JsonClient(settings.tempo_url) if settings.tempo_url else None

    @property
    def source(self) -> str:
        urls = [self.settings.prometheus_url, self.settings.loki_url, self.settings.tempo_url]
        return "observability " + " ".join(u for u in urls if u)

    def describe(self, position: Position) -> str:
        return f"{len(position.get('seen', []))} sightings, {len(position.get('pending', {}))} traces pending"

    def poll(self, position: Position) -> PollResult:
        now = now_ms()
        since = now - int(self.settings.lookback_s * 1000)
        seen = list(position.get("seen", []))
        seen_set = set(seen)
        log_from: dict[str, int] = dict(position.get("log_from", {}))
        pending: dict[str, list[Any]] = {
            k: v for k, v in position.get("pending", {}).items() if v[1] >= since
        }
        events = []

        def emit(
            pillar: str, svc: str, selector: str, tid: str | None, count: int, ts: int
        ) -> None:
            key = f"{pillar}|{svc}|{selector}|{tid or ''}"
            if key in seen_set:
                return
            seen_set.add(key)
            seen.append(key)
            data = {
                "pillar": pillar,
                "trace_id": tid,
                "service": svc,
                "selector": selector,
                "count": count,
            }
            events.append(self.signal("pillar.seen", [key], ts, data))

        for svc in self.settings.services:
            for query in svc.metrics:
                for tid, ts in self._metrics(svc.service, query, since, now, emit):
                    pending.setdefault(tid, [svc.service, ts])
            for query in svc.logs:
                start = max(since, log_from.get(query, since))
                for tid, ts in self._logs(svc.service, query, start, now, emit):
                    pending.setdefault(tid, [svc.service, ts])
                # overlap a minute: lines ingested late are still found (sightings are unique)
                log_from[query] = now - 60_000
            for query in svc.traces:
                self._search(svc.service, query, since, now, emit)
        lag = self._traces(pending, emit)
        position_out = {"seen": seen[-KEEP_SEEN:], "log_from": log_from, "pending": pending}
        return PollResult(tuple(events), position_out, lag)

    def _metrics(
        self, svc: str, query: str, since: int, now: int, emit: Any
    ) -> list[tuple[str, int]]:
        if self.prom is None:
            raise SourceError(f"service {svc} has metric queries but no prometheus_url")
        series = prom_result(
            self.prom.get("/api/v1/query", params={"query": query}), "prometheus query"
        )
        if series:
            emit("metric", svc, query, None, len(series), now)
        body = self.prom.get(
            "/api/v1/query_exemplars",
            params={"query": query, "start": since / 1000, "end": now / 1000},
        )
        found = exemplar_traces(body, "prometheus exemplars")
        for tid, ts in found[: self.settings.max_traces_per_poll]:
            emit("metric", svc, query, tid, 1, ts or now)
        return found[: self.settings.max_traces_per_poll]

    def _logs(self, svc: str, query: str, start: int, now: int, emit: Any) -> list[tuple[str, int]]:
        if self.loki is None:
            raise SourceError(f"service {svc} has log queries but no loki_url")
        params = {
            "query": query,
            "start": str(start * 1_000_000),
            "end": str(now * 1_000_000),
            "limit": "1000",
            "direction": "forward",
        }
        lines = loki_lines(
            self.loki.get("/loki/api/v1/query_range", params=params), "loki query_range"
        )
        if lines:
            emit("log", svc, query, None, len(lines), lines[0][0])
        found: dict[str, int] = {}
        for ts, line, labels in lines:
            tid = next((str(labels[k]) for k in TRACE_LABELS if labels.get(k)), None)
            match = self.trace_re.search(line) if tid is None else None
            tid = tid or (match.group(1) if match else None)
            if tid and tid not in found:
                found[tid] = ts
        picked = list(found.items())[: self.settings.max_traces_per_poll]
        for tid, ts in picked:
            emit("log", svc, query, tid, 1, ts)
        return picked

    def _search(self, svc: str, query: str, since: int, now: int, emit: Any) -> None:
        if self.tempo is None:
            raise SourceError(f"service {svc} has trace queries but no tempo_url")
        params = {
            "q": query,
            "start": str(since // 1000),
            "end": str(now // 1000 + 1),
            "limit": str(self.settings.max_traces_per_poll),
        }
        body = expect(self.tempo.get("/api/search", params=params), dict, "tempo search")
        for trace in body.get("traces", []) or []:
            tid = str(trace.get("traceID", ""))
            if tid:
                ts = int(trace.get("startTimeUnixNano", 0)) // 1_000_000 or now
                matched = sum(int(s.get("matched", 0)) for s in trace.get("spanSets", []) or [])
                emit("trace", svc, query, tid, matched or 1, ts)

    def _traces(self, pending: dict[str, list[Any]], emit: Any) -> int:
        """Look up pending trace ids in Tempo; returns how many are still pending."""
        if self.tempo is None or not pending:
            return len(pending)
        asked = 0
        for tid in list(pending):
            if asked >= self.settings.max_traces_per_poll:
                break
            asked += 1
            status, body = self.tempo.request("GET", f"/api/traces/{tid}", allow=(NOT_FOUND,))
            if status == NOT_FOUND:
                continue
            svc, first = pending.pop(tid)
            spans, _services, start = trace_spans(body)
            if spans:
                emit("trace", svc, f"trace:{tid}", tid, spans, start or first)
        return len(pending)

    def close(self) -> None:
        for client in (self.prom, self.loki, self.tempo):
            if client is not None:
                client.close()


def _iter_services(items: Iterable[str]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, list[str]]] = {}
    for item in items:
        kind, _, rest = item.partition(":")
        svc, _, query = rest.partition("=")
        if kind not in ("metrics", "logs", "traces") or not svc or not query:
            raise click.BadParameter(
                f"{item!r}: expected KIND:SERVICE=QUERY (KIND metrics|logs|traces)"
            )
        out.setdefault(svc, {}).setdefault(kind, []).append(query)
    return [{"service": s, **q} for s, q in out.items()]


def build(settings: Settings, platform_id: str) -> PillarCollector:
    return PillarCollector(settings, platform_id)


@click.command("observability")
@click.option("--prometheus-url", default=None)
@click.option("--loki-url", default=None)
@click.option("--tempo-url", default=None)
@click.option(
    "--query",
    "queries",
    multiple=True,
    required=True,
    metavar="KIND:SERVICE=QUERY",
    help='e.g. logs:orders-enricher={job="orders-enricher"} (repeatable)',
)
@common_options
def command(**kwargs: Any) -> None:
    """Publish pillar.seen from Prometheus, Loki and Tempo query APIs."""
    common, own = split_common(kwargs)
    own["services"] = _iter_services(own.pop("queries"))
    settings = parse_model(Settings, {"interval_s": common["interval_s"], **own}, "flags")
    run_one(lambda platform: build(settings, platform), common)
