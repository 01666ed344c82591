"""Trino column masks: which columns are masked, and for whom."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.core.context import ExamContext, Point
from services.core.events import Event
from services.core.facts.base import Fact, FactSpec, to_point
from services.core.matching import strings, text


class ColumnMasks(Fact):
    """Per masked column (catalog.schema.table.column): first seen, and since when it
    applies to whom (a user or group -> the earliest mask event naming it, so the
    criterion can ignore what was only learned after its time box)."""

    __slots__ = ("applies", "first", "spec")

    def __init__(self, spec: ColumnMasksSpec) -> None:
        self.spec = spec
        self.first: dict[str, Point] = {}
        self.applies: dict[str, dict[str, Point]] = {}

    def accepts(self, ev: Event) -> bool:
        return ev.type == "trino.column_mask"

    def fold(self, ev: Event, ctx: ExamContext) -> bool:
        d = ev.data
        parts = [text(d.get(f)) for f in ("catalog", "schema", "table", "column")]
        if not parts[3]:
            return False
        col = ".".join(x for x in parts if x)
        p = (ev.ts_ms, ev.event_id)
        changed = False
        cur = self.first.get(col)
        if cur is None or p < cur:
            self.first[col] = p
            changed = True
        who = self.applies.setdefault(col, {})
        for u in strings(d.get("applies_to")):
            cur = who.get(u)
            if cur is None or p < cur:
                who[u] = p
                changed = True
        return changed

    def users(self, cols: list[str], close_ms: int) -> set[str]:
        """Users (not groups) the masks on ``cols`` applied to by ``close_ms``."""
        return {
            u
            for c in cols
            for u, p in self.applies.get(c, {}).items()
            if p[0] <= close_ms and not u.startswith("group:")
        }

    def dump(self) -> Any:
        return {
            c: [list(p), {u: list(q) for u, q in self.applies.get(c, {}).items()}]
            for c, p in self.first.items()
        }

    def load(self, obj: Any) -> None:
        self.first = {c: to_point(v[0]) for c, v in obj.items()}
        self.applies = {c: {u: to_point(q) for u, q in v[1].items()} for c, v in obj.items()}


@dataclass(frozen=True, slots=True)
class ColumnMasksSpec(FactSpec):
    types = ("trino.column_mask",)

    def make(self) -> ColumnMasks:
        return ColumnMasks(self)
