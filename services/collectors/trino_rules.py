"""trino.column_mask from Trino's file-based access-control rules (``rules.json``).

Each ``tables`` rule with ``columns[].mask`` is a column mask. Trino matches ``catalog``,
``schema``, ``table``, ``user``, ``role`` and ``group`` as regular expressions (a rule
without one matches all) and applies the **first** table rule that matches a user and
table, so a mask behind an earlier rule that matches at least everything the mask's rule
does is never applied and is not published. ``applies_to`` lists the users (a ``user``
regex that is a plain alternation such as ``analyst|bi`` is split into names) and the groups
as ``group:NAME``; an empty list means everyone. Who a mask really applied to is in each
query's ``masked_columns`` (``trino_events``). A mask is published when it appears or
changes, with the rules' modification time as event time.

The rules are read where Trino reads them, never from Trino itself (Trino serves no
rules endpoint): Trino's ``access-control.properties`` (``access_control``: its
``security.config-file`` and ``security.json-pointer``), or the same file path, or the same
REST endpoint with the same JSON pointer Trino is configured with.
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
#: the fields Trino matches a table rule on, as regexes (absent: matches all)
MATCHED = ("user", "role", "group", "catalog", "schema", "table")
ANY = {None, ".*"}


class Settings(SourceSettings):
    path: Path | None = Field(default=None, description="rules.json path (security.config-file)")
    url: str | None = Field(
        default=None, description="REST endpoint Trino reads the rules from (security.config-file)"
    )
    json_pointer: str = Field(
        default="",
        description="JSON pointer to the rules in the URL's answer (security.json-pointer)",
    )
    access_control: Path | None = Field(
        default=None,
        description="Trino's access-control.properties: the rules source is taken from it",
    )

    @model_validator(mode="after")
    def _one_source(self) -> Settings:
        given = [x for x in (self.path, self.url, self.access_control) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of path, url and access_control")
        return self


def read_properties(path: Path) -> dict[str, str]:
    """A Java properties file's ``key=value`` lines (comments and blank lines skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError(f"cannot read Trino's access control config {path}: {exc}") from exc
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def rules_source(settings: Settings) -> tuple[Path | None, str | None, str]:
    """(path, url, json pointer) of the rules Trino applies."""
    if settings.access_control is None:
        return settings.path, settings.url, settings.json_pointer
    props = read_properties(settings.access_control)
    name = props.get("access-control.name")
    if name != "file":
        raise SourceError(
            f"{settings.access_control}: access-control.name is {name!r}, not 'file': "
            "Trino does not apply file-based rules there",
            "payload",
        )
    source = props.get("security.config-file")
    if not source:
        raise SourceError(f"{settings.access_control}: no security.config-file", "payload")
    pointer = props.get("security.json-pointer", "")
    if source.startswith(("http://", "https://")):
        return None, source, pointer
    path = Path(source)
    if not path.is_absolute():  # Trino resolves it against its home, where etc/ lives
        path = settings.access_control.parent.parent / path
    return path, None, pointer


def at_pointer(doc: Any, pointer: str) -> Any:
    """The value at an RFC 6901 JSON pointer (as Trino's ``security.json-pointer``)."""
    if not pointer:
        return doc
    if not pointer.startswith("/"):
        raise SourceError(f"JSON pointer {pointer!r} must start with /", "payload")
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(doc, Mapping) and token in doc:
            doc = doc[token]
        elif isinstance(doc, list) and token.isdigit() and int(token) < len(doc):
            doc = doc[int(token)]
        else:
            raise SourceError(f"the rules document has nothing at {pointer!r}", "payload")
    return doc


def _names(pattern: Any, prefix: str = "") -> list[str]:
    if pattern is None:
        return []
    text = str(pattern)
    parts = text.split("|") if PLAIN.fullmatch(text) else [text]
    return [f"{prefix}{p}" for p in parts]


def shadows(earlier: Mapping[str, Any], rule: Mapping[str, Any]) -> bool:
    """Whether ``earlier`` surely matches every user and table ``rule`` matches (so Trino,
    applying the first match, never gets to ``rule``). Patterns are compared as text: a
    catch-all or the very same pattern; anything subtler is not claimed."""
    for key in MATCHED:
        mine, theirs = earlier.get(key), rule.get(key)
        if mine not in ANY and mine != theirs:
            return False
    return True


def column_masks(rules: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every column mask Trino can apply, in the contract's shape."""
    tables = rules.get("tables", [])
    if not isinstance(tables, list):
        raise SourceError("rules.tables is not a list", "payload")
    out = []
    for index, rule in enumerate(tables):
        if not isinstance(rule, Mapping):
            raise SourceError(f"tables[{index}] is not an object", "payload")
        masked = [
            c for c in rule.get("columns", []) or [] if isinstance(c, Mapping) and c.get("mask")
        ]
        if not masked or any(shadows(e, rule) for e in tables[:index] if isinstance(e, Mapping)):
            continue
        applies = _names(rule.get("user")) + _names(rule.get("group"), "group:")
        for column in masked:
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
        s = self.settings
        return f"trino access rules {s.access_control or s.path or s.url}"

    def describe(self, position: Position) -> str:
        return f"{len(position.get('masks', []))} masks, rules of {position.get('mtime', '-')}"

    def read(self) -> tuple[str, int, str]:
        """(rules text, event time in ms, JSON pointer), from where Trino reads them."""
        path, url, pointer = rules_source(self.settings)
        if path is not None:
            try:
                st = path.stat()
                return path.read_text(encoding="utf-8"), st.st_mtime_ns // 1_000_000, pointer
            except OSError as exc:
                raise SourceError(f"cannot read Trino rules {path}: {exc}") from exc
        try:
            resp = httpx.get(str(url), timeout=15)
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot fetch Trino rules {url}: {exc}") from exc
        if resp.status_code != 200:
            kind = "platform" if resp.status_code >= 500 else "proctor_side"
            raise SourceError(f"cannot fetch Trino rules {url}: HTTP {resp.status_code}", kind)
        return resp.text, now_ms(), pointer

    def poll(self, position: Position) -> PollResult:
        text, ts, pointer = self.read()
        try:
            rules = at_pointer(json.loads(text), pointer)
        except ValueError as exc:
            raise SourceError(f"Trino rules are not JSON: {exc}", "payload") from exc
        if not isinstance(rules, Mapping):
            raise SourceError("Trino rules must be a JSON object", "payload")
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
@click.option("--url", default=None, help="REST endpoint Trino reads the rules from")
@click.option("--json-pointer", default="", help="security.json-pointer of the URL's answer")
@click.option(
    "--access-control",
    type=click.Path(path_type=Path),
    default=None,
    help="Trino's access-control.properties (the rules source is read from it)",
)
@common_options
def command(**kwargs: Any) -> None:
    """Publish trino.column_mask from Trino's file-based access-control rules."""
    common, own = split_common(kwargs)
    settings = parse_model(Settings, {"interval_s": common["interval_s"], **own}, "flags")
    run_one(lambda platform: build(settings, platform), common)
