"""tool.used: who used Grafana, Loki, Tempo, DataHub, Argo CD or Trino, from access logs.

Tails each configured log file from a stored (inode, offset) position: complete lines
only, from the start again when the file was rotated (new inode) or truncated. Each line
is parsed by its format, classified into an action and target by the tool's rules (see
``ACTIONS``) and published once: the event id comes from the file, inode and byte offset
of the line. Lines that are no tool use (static files, health checks) are skipped.

Formats: ``combined`` (nginx/Apache combined log format, e.g. an ingress in front of
Loki, Tempo, DataHub or Argo CD), ``grafana`` (Grafana's logfmt router log with
``router_logging = true``), ``trino`` (Trino's tab-separated ``http-request.log``: time,
client, method, URI, user, agent, status, ...).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import click
from pydantic import BaseModel, ConfigDict, Field

from services.collectors.http import SourceError
from services.collectors.polling import Collector, PollResult, Position
from services.collectors.runner import common_options, run_one, split_common
from services.collectors.settings import SourceSettings, parse_model
from services.core.events import rfc3339_to_ms

Tool = Literal["grafana", "loki", "tempo", "datahub", "argocd", "trino"]
Format = Literal["combined", "grafana", "trino"]
MAX_BYTES_PER_POLL = 4 * 1024 * 1024


class LogFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tool: Tool
    path: Path
    format: Format = "combined"


class Settings(SourceSettings):
    logs: tuple[LogFile, ...] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Access:
    """One parsed request line."""

    ts_ms: int
    user: str
    method: str
    path: str
    query: Mapping[str, list[str]]
    status: int


# -- parsing -----------------------------------------------------------------------------
COMBINED = re.compile(
    r'^(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<method>[A-Z]+) (?P<target>\S+)[^"]*" '
    r"(?P<status>\d{3}) "
)
LOGFMT = re.compile(r'(\w[\w.-]*)=("(?:[^"\\]|\\.)*"|\S*)')


def _split_target(target: str) -> tuple[str, Mapping[str, list[str]]]:
    parts = urlsplit(target)
    return unquote(parts.path), parse_qs(parts.query)


def parse_combined(line: str) -> Access | None:
    m = COMBINED.match(line)
    if m is None:
        return None
    ts = int(datetime.strptime(m["time"], "%d/%b/%Y:%H:%M:%S %z").timestamp() * 1000)
    path, query = _split_target(m["target"])
    user = "" if m["user"] == "-" else m["user"]
    return Access(ts, user, m["method"], path, query, int(m["status"]))


def parse_grafana(line: str) -> Access | None:
    fields = {
        k: (v[1:-1].replace('\\"', '"') if v.startswith('"') else v)
        for k, v in LOGFMT.findall(line)
    }
    if fields.get("msg") != "Request Completed" or "path" not in fields:
        return None
    path, query = _split_target(fields["path"])
    return Access(
        rfc3339_to_ms(fields["t"]),
        fields.get("uname", ""),
        fields.get("method", "GET"),
        path,
        query,
        int(fields.get("status", "0") or 0),
    )


def parse_trino(line: str) -> Access | None:
    cols = line.rstrip("\n").split("\t")
    if len(cols) < 7 or not cols[6].isdigit():
        return None
    path, query = _split_target(cols[3])
    return Access(rfc3339_to_ms(cols[0]), cols[4], cols[2], path, query, int(cols[6]))


PARSERS = {"combined": parse_combined, "grafana": parse_grafana, "trino": parse_trino}

# -- classification ----------------------------------------------------------------------
#: per tool: (method regex, path regex, action, target: a path group name or ?query param)
ACTIONS: Mapping[str, tuple[tuple[str, str, str, str | None], ...]] = {
    "grafana": (
        ("GET", r"/explore", "explore", "?left"),
        ("POST", r"/api/ds/query", "query", None),
        ("GET", r"/d/(?P<t>[^/]+)(/.*)?", "view_dashboard", "t"),
        ("GET", r"/api/dashboards/uid/(?P<t>[^/]+)", "view_dashboard", "t"),
    ),
    "loki": (
        ("GET|POST", r"/loki/api/v1/query(_range)?", "query", "?query"),
        ("GET", r"/loki/api/v1/tail", "tail", "?query"),
    ),
    "tempo": (
        ("GET", r"/api/(v2/)?traces/(?P<t>[0-9a-fA-F]+)", "view_trace", "t"),
        ("GET", r"/api/(v2/)?search", "search", "?q"),
    ),
    "datahub": (
        (
            "GET",
            r"/(?P<kind>dataset|dataJob|dataFlow|chart|dashboard)/(?P<t>[^/]+)/Lineage",
            "view_lineage",
            "t",
        ),
        (
            "GET",
            r"/(?P<kind>dataset|dataJob|dataFlow|chart|dashboard)/(?P<t>[^/]+)(/.*)?",
            "view_entity",
            "t",
        ),
    ),
    "argocd": (
        ("POST", r"/api/v1/applications/(?P<t>[^/]+)/sync", "sync", "t"),
        ("GET", r"/applications/([^/]+/)?(?P<t>[^/]+)", "view_app", "t"),
    ),
    "trino": (
        ("POST", r"/v1/statement", "query", None),
        ("GET", r"/ui/api/query/(?P<t>[^/]+)", "view_query", "t"),
    ),
}
_COMPILED = {
    tool: [(re.compile(m), re.compile(p), a, t) for m, p, a, t in rules]
    for tool, rules in ACTIONS.items()
}


def classify(tool: str, access: Access) -> tuple[str, str | None] | None:
    """(action, target) of a request, or None when it is no use of the tool."""
    if access.status >= 400:
        return None
    for method, path, action, target in _COMPILED[tool]:
        if not method.fullmatch(access.method):
            continue
        m = path.fullmatch(access.path)
        if m is None:
            continue
        if target is None:
            return action, None
        if target.startswith("?"):
            values = access.query.get(target[1:])
            return action, values[0] if values else None
        return action, m.group(target)
    return None


# -- the tailer --------------------------------------------------------------------------
class AccessLogCollector(Collector):
    name = "observability"
    key = "access-logs"

    def __init__(self, settings: Settings, platform_id: str) -> None:
        super().__init__(platform_id)
        self.settings = settings

    @property
    def source(self) -> str:
        return "access logs " + ", ".join(f"{f.tool}:{f.path}" for f in self.settings.logs)

    def describe(self, position: Position) -> str:
        return ", ".join(f"{Path(p).name}@{v[1]}" for p, v in sorted(position.items()))[:500]

    def poll(self, position: Position) -> PollResult:
        events = []
        new: dict[str, Any] = {}
        lag = 0
        for log_file in self.settings.logs:
            key = str(log_file.path)
            found, state, left = self._tail(log_file, position.get(key))
            events.extend(found)
            if state is not None:
                new[key] = state
            lag += left
        return PollResult(tuple(events), new, lag)

    def _tail(self, log_file: LogFile, old: Any) -> tuple[list[Any], list[int] | None, int]:
        try:
            fh = log_file.path.open("rb")
        except FileNotFoundError:
            return [], None, 0  # not written yet
        except OSError as exc:
            raise SourceError(f"cannot read {log_file.path}: {exc}") from exc
        with fh:
            st = os.fstat(fh.fileno())
            inode, offset = (int(old[0]), int(old[1])) if old else (st.st_ino, 0)
            if inode != st.st_ino or offset > st.st_size:
                inode, offset = st.st_ino, 0  # rotated or truncated: the new file from its start
            fh.seek(offset)
            chunk = fh.read(MAX_BYTES_PER_POLL)
        end = chunk.rfind(b"\n") + 1
        events = []
        parse = PARSERS[log_file.format]
        pos = offset
        for raw in chunk[:end].splitlines(keepends=True):
            line_at = pos
            pos += len(raw)
            try:
                access = parse(raw.decode("utf-8", errors="replace"))
            except (ValueError, KeyError):
                access = None  # a line of another shape (startup messages...)
            if access is None:
                continue
            what = classify(log_file.tool, access)
            if what is None:
                continue
            action, target = what
            data = {
                "tool": log_file.tool,
                "action": action,
                "target": target,
                "user": access.user or "anonymous",
            }
            events.append(
                self.signal("tool.used", [str(log_file.path), inode, line_at], access.ts_ms, data)
            )
        left = max(0, st.st_size - (offset + end))
        return events, [inode, offset + end], left


def build(settings: Settings, platform_id: str) -> AccessLogCollector:
    return AccessLogCollector(settings, platform_id)


@click.command("access-logs")
@click.option(
    "--log",
    "logs",
    multiple=True,
    required=True,
    metavar="TOOL:FORMAT:PATH",
    help="e.g. grafana:grafana:/var/log/grafana/grafana.log (repeatable)",
)
@common_options
def command(**kwargs: Any) -> None:
    """Publish tool.used from the access logs of Grafana, Loki, Tempo, DataHub, Argo CD, Trino."""
    common, own = split_common(kwargs)
    files = []
    for item in own["logs"]:
        parts = item.split(":", 2)
        if len(parts) != 3:
            raise click.BadParameter(f"{item!r}: expected TOOL:FORMAT:PATH", param_hint="--log")
        files.append({"tool": parts[0], "format": parts[1], "path": parts[2]})
    settings = parse_model(Settings, {"interval_s": common["interval_s"], "logs": files}, "flags")
    run_one(lambda platform: build(settings, platform), common)
