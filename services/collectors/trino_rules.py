"""trino.column_mask from Trino's file-based access-control rules (``rules.json``).

Each ``tables`` rule with ``columns[].mask`` is a column mask. Trino matches ``catalog``,
``schema``, ``table``, ``user`` and ``group`` as regular expressions; a rule without one
applies to all. ``applies_to`` lists the users (a ``user`` regex that is a plain
alternation such as ``analyst|bi`` is split into names) and the groups as ``group:NAME``;
an empty list means everyone. A mask is published when it appears or changes, with the
rules file's modification time as event time. The file is read from a path (as Trino's
``security.config-file``) or a URL serving it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import httpx
from pydantic import Field, model_validator

from services.collectors.http import SourceError
from services.collectors.polling import Collector, PollResult, Position, now_ms
from services.collectors.runner import common_options, run_one, split_common
from services.collectors.settings import SourceSettings, parse_model

PLAIN = re.compile(r"[A-Za-z0-9_.@-]+(\|[A-Za-z0-9_.@-]+)*")


class Settings(SourceSettings):
    path: Path | None = Field(default=None, description="rules.json path")
    url: str | None = Field(default=None, description="URL serving rules.json")

    @model_validator(mode="after")
    def _one_source(self) -> Settings:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of path and url")
        return self


def _names(pattern: Any, prefix: str = "") -> list[str]:
    if pattern is None:
        return []
    text = str(pattern)
    parts = text.split("|") if PLAIN.fullmatch(text) else [text]
    return [f"{prefix}{p}" for p in parts]


def column_masks(rules: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every column mask of a rules document, in the contract's shape."""
    out = []
    for index, rule in enumerate(rules.get("tables", [])):
        if not isinstance(rule, Mapping):
            raise SourceError(f"tables[{index}] is not an object")
        applies = _names(rule.get("user")) + _names(rule.get("group"), "group:")
        for column in rule.get("columns", []) or []:
            if not isinstance(column, Mapping) or not column.get("mask"):
                continue
            out.append(
                {
                    "catalog": str(rule.get("catalog", ".*")),
                    "schema": str(rule.get("schema", ".*")),
                    "table": str(rule.get("table", ".*")),
                    "column": str(column.get("name", "")),
                    "mask_expression": str(column["mask"]),
                    "applies_to": applies,
                }
            )
    return out


class TrinoRulesCollector(Collector):
    name = "trino"
    key = "trino-rules"

    def __init__(self, settings: Settings, platform_id: str) -> None:
        super().__init__(platform_id)
        self.settings = settings

    @property
    def source(self) -> str:
        return f"trino access rules {self.settings.path or self.settings.url}"

    def describe(self, position: Position) -> str:
        return f"{len(position.get('masks', []))} masks, rules of {position.get('mtime', '-')}"

    def read(self) -> tuple[str, int]:
        """(rules text, event time in ms)."""
        if self.settings.path is not None:
            try:
                st = self.settings.path.stat()
                return self.settings.path.read_text(encoding="utf-8"), st.st_mtime_ns // 1_000_000
            except OSError as exc:
                raise SourceError(f"cannot read Trino rules {self.settings.path}: {exc}") from exc
        try:
            resp = httpx.get(str(self.settings.url), timeout=15)
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot fetch Trino rules {self.settings.url}: {exc}") from exc
        return resp.text, now_ms()

    def poll(self, position: Position) -> PollResult:
        text, ts = self.read()
        try:
            rules = json.loads(text)
        except ValueError as exc:
            raise SourceError(f"Trino rules are not JSON: {exc}") from exc
        if not isinstance(rules, Mapping):
            raise SourceError("Trino rules must be a JSON object")
        masks = column_masks(rules)
        known = set(position.get("masks", []))
        events = []
        digests = []
        for data in masks:
            digest = json.dumps(data, sort_keys=True, separators=(",", ":"))
            digests.append(digest)
            if digest not in known:
                events.append(self.signal("trino.column_mask", [digest], ts, data))
        return PollResult(tuple(events), {"masks": sorted(set(digests)), "mtime": ts})


def build(settings: Settings, platform_id: str) -> TrinoRulesCollector:
    return TrinoRulesCollector(settings, platform_id)


@click.command("trino-rules")
@click.option("--path", type=click.Path(path_type=Path), default=None, help="rules.json path")
@click.option("--url", default=None, help="URL serving rules.json")
@common_options
def command(**kwargs: Any) -> None:
    """Publish trino.column_mask from Trino's file-based access-control rules."""
    common, own = split_common(kwargs)
    settings = parse_model(Settings, {"interval_s": common["interval_s"], **own}, "flags")
    run_one(lambda platform: build(settings, platform), common)
